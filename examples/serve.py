"""`make run`: serve the example jobs API on 127.0.0.1:8000 for manual use.

With a Clerk configuration in the environment (or .env / .env.local), the API trusts that
instance. Without one, FakeClerk (the local emulator) is started too, with a test user, and
the commands to call the API are printed. Stop with Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clerk_deps import ClerkSettings, get_settings
from clerk_deps.testing import FakeClerk


def main(port: int = 8000) -> int:
    with ExitStack() as stack:
        if ClerkSettings().key_source_name is None:
            fake = stack.enter_context(FakeClerk().serve())
            os.environ.update(fake.env_vars())
            get_settings.cache_clear()
            user = fake.create_user(email_address="you@example.com", first_name="You")
            api = f"http://127.0.0.1:{port}"
            exports = " ".join(f"{name}={value}" for name, value in fake.env_vars().items())
            print("No Clerk configuration found: FakeClerk plays Clerk at", fake.base_url)
            print(f"Test user: {user['id']} <you@example.com>\n")
            print("In another shell:")
            print(f"  export {exports}")
            print(f"  clerk-deps call {api}/me --user {user['id']}")
            print(
                f"  clerk-deps call {api}/jobs --user {user['id']} --method POST "
                """--data '{"name": "nightly"}'"""
            )
            print(f'  curl -H "Authorization: Bearer $(clerk-deps token {user["id"]})" {api}/me\n')
            sys.stdout.flush()
        uvicorn.run("examples.jobs_api:app", host="127.0.0.1", port=port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(os.environ.get("PORT", "8000"))))
