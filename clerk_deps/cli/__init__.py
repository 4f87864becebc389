"""The ``clerk-deps`` command: the troubleshooting decision tree, as tools.

    clerk-deps doctor [--token TOKEN]      is this configuration going to work?
    clerk-deps verify [TOKEN | -]          verify like the app (any token type, named); on
                                           failure, say how to fix it
    clerk-deps jwks-to-pem [--url URL]     PEM public keys from a key set (for CLERK_JWT_KEY)
    clerk-deps token USER_ID               create a session and mint a token (prints the token)
    clerk-deps token --type api_key OWNER  create an API key (--type m2m_token: an M2M token)
    clerk-deps call URL --user USER_ID     mint a token and call URL with it at once
    clerk-deps emulator [--port P]         run FakeClerk on 127.0.0.1, with a test user

Exit status: 0 on success, 1 with a one-line reason on stderr otherwise, 2 for usage errors.

One module per group of subcommands; each has a ``register(commands)`` that adds its parsers
and sets ``handler`` (``(args, out) -> exit status``). A new group is a new module plus one
line in :data:`_GROUPS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from . import doctor, emulator, mint, verify
from ._common import CommandError
from .advice import ADVICE
from .emulator import run_emulator

__all__ = ["ADVICE", "CommandError", "build_parser", "main", "run_emulator"]

_GROUPS = (doctor, verify, mint, emulator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clerk-deps",
        description="Diagnose and exercise Clerk session verification. Every subcommand reads "
        "its settings as the app does (environment, .env.local, .env); see "
        "'clerk-deps COMMAND --help' for what each one needs.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of the ``clerk-deps`` console script."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    try:
        status: int = args.handler(args, out)
    except CommandError as error:
        print(f"clerk-deps {args.command}: {error}", file=sys.stderr)
        return 1
    except RecursionError:  # a hostile input nested past Python's limits, wherever it is read
        print(f"clerk-deps {args.command}: input nested too deeply to read", file=sys.stderr)
        return 1
    return status
