"""``clerk-deps emulator``: FakeClerk on 127.0.0.1 with a ready test user, until interrupted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ..testing.server import TestingExtraMissing, require_testing_extra
from ._common import CommandError, Commands, add_command

__all__ = ["TEST_USER_EMAIL", "register", "run_emulator"]

TEST_USER_EMAIL = "you@example.com"


def register(commands: Commands) -> None:
    emulator = add_command(
        commands,
        "emulator",
        lambda args, out: run_emulator(args.port, out, _wait_forever),
        help="run FakeClerk on 127.0.0.1, with a test user",
        description="Run FakeClerk, the local Clerk emulator, on 127.0.0.1 until interrupted "
        "(Ctrl-C). It prints the CLERK_* variables an app (and the other subcommands) needs to "
        "trust it, then a ready test user and the commands to mint its tokens. No Clerk account "
        "needed.",
        epilog="Needs no variable; it prints the ones to export. Needs uvicorn, from the "
        "testing extra: pip install 'clerk-deps[testing]'.",
    )
    emulator.add_argument("--port", type=int, default=0, help="port (default: a free one)")


def run_emulator(port: int, out: TextIO, wait: Callable[[], None]) -> int:
    """Serve FakeClerk on ``port``, print how to use it, then block in ``wait()``."""
    try:
        require_testing_extra("uvicorn", "the emulator")
    except TestingExtraMissing as error:
        raise CommandError(str(error)) from None
    from ..testing.fakeclerk import FakeClerk

    with FakeClerk().serve(port=port) as fake:
        variables = fake.env_vars()
        print("FakeClerk is running; an app trusts it with:", file=out)
        for name, value in variables.items():
            print(f"{name}={value}", file=out)
        user = fake.create_user(email_address=TEST_USER_EMAIL, first_name="Test")
        exports = " ".join(f"{name}={value}" for name, value in variables.items())
        print(f"\nTest user: {user['id']} <{TEST_USER_EMAIL}>", file=out)
        print("\nIn another shell:", file=out)
        print(f"  export {exports}", file=out)
        print(f"  clerk-deps token {user['id']}", file=out)
        print(f"  clerk-deps call http://127.0.0.1:8000/me --user {user['id']}", file=out)
        out.flush()
        wait()
    return 0


def _wait_forever() -> None:  # pragma: no cover - interrupted by the user
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
