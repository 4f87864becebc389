"""`make demo`: the whole story on 127.0.0.1, with no Clerk account.

FakeClerk (a local Clerk emulator) and the example jobs API run as real servers on loopback.
The walkthrough creates a session and mints a token through the Backend API, calls the API
with it at once, then shows each way a request is refused and why, the audit line the job
left, and `clerk-deps verify` explaining an expired token. Exits 0 when every answer is the
expected one, and leaves no process running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clerk_deps import get_settings
from clerk_deps.backend_api import ClerkBackendAPI
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.testing.server import serve_app
from examples import jobs_api

USER_EMAIL = "ada@example.com"


class Walkthrough:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n[{self.number}] {title}")

    def post_job(self, token: str | None, name: str = "nightly-report") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post("/jobs", json={"name": name}, headers=headers)
        body = response.json()
        print(f"    POST /jobs -> {response.status_code} {json.dumps(body)}")
        return response.status_code, body

    def expect_refusal(self, token: str | None, reason: str) -> None:
        status, body = self.post_job(token)
        expect(status == 401 and body["detail"]["reason"] == reason, f"401 {reason}")


def expect(condition: bool, what: str) -> None:
    if not condition:
        print(f"    FAILED: expected {what}")
        raise SystemExit(1)
    print(f"    ok: {what}")


def use_environment(variables: dict[str, str]) -> None:
    """Configure the app the way a deployment would: environment variables, read lazily."""
    os.environ.update(variables)
    get_settings.cache_clear()


async def mint_through_backend_api(fake: FakeClerk, user_id: str) -> tuple[str, str]:
    api = ClerkBackendAPI(fake.secret_key, api_url=fake.base_url)
    session = await api.create_session(user_id)
    return session["id"], await api.create_session_token(session["id"])


def verify_with_cli(token: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`clerk-deps verify -`, the token on stdin (so it never shows up in a process list)."""
    return subprocess.run(
        [sys.executable, "-m", "clerk_deps", "verify", "-"],
        input=token,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def main() -> int:
    import asyncio

    audit_dir = Path(tempfile.mkdtemp(prefix="clerk-deps-demo-audit-"))
    jobs_api.audit_trail.directory = audit_dir
    print("clerk_deps demo: FakeClerk plays Clerk on 127.0.0.1 (no account needed)")

    with FakeClerk().serve() as fake:
        env = fake.env_vars()
        use_environment(env)
        for name, value in env.items():
            shown = value if name != "CLERK_SECRET_KEY" else value[:8] + "..."
            print(f"    {name}={shown}")
        user = fake.create_user(email_address=USER_EMAIL, first_name="Ada")
        print(f"    test user {user['id']} <{USER_EMAIL}>")

        with (
            serve_app(jobs_api.app) as api_url,
            httpx.Client(base_url=api_url, timeout=10) as client,
        ):
            print(f"    jobs API (examples/jobs_api.py) on {api_url}")
            walk = Walkthrough(client)

            walk.step("Create a session and mint a token (Backend API), call POST /jobs at once")
            session_id, token = asyncio.run(mint_through_backend_api(fake, user["id"]))
            print(f"    session {session_id}; token minted, valid for 60 s")
            status, job = walk.post_job(token)
            expect(
                status == 201 and job["created_by"] == user["id"], "201, job attributed to the user"
            )
            expect(job["created_by_email"] == USER_EMAIL, "email looked up (the token has none)")

            walk.step("No token")
            walk.expect_refusal(None, "session-token-missing")

            walk.step("A token that expired an hour ago")
            expired = fake.session_token(session_id, now=time.time() - 3600)
            walk.expect_refusal(expired, "token-expired")

            walk.step("A forged token: the instance's kid, someone else's key")
            forger = TestIssuer(issuer=fake.base_url, kid=fake.kid)
            walk.expect_refusal(
                forger.forged_token(user["id"], sid=session_id), "token-invalid-signature"
            )

            walk.step(
                "Allow only https://app.example.com, then present a token from another origin"
            )
            use_environment({"CLERK_AUTHORIZED_PARTIES": "https://app.example.com"})
            foreign = fake.session_token(session_id, azp="https://evil.example")
            walk.expect_refusal(foreign, "token-invalid-authorized-parties")
            os.environ.pop("CLERK_AUTHORIZED_PARTIES")
            get_settings.cache_clear()

            walk.step("The audit line the job left")
            lines = [
                json.loads(line)
                for path in sorted(audit_dir.glob("audit_*.jsonl"))
                for line in path.read_text().splitlines()
            ]
            print(f"    {next(audit_dir.glob('audit_*.jsonl')).name}: {json.dumps(lines[-1])}")
            record = lines[-1]
            expect(
                len(lines) == 1
                and record["user_id"] == user["id"]
                and record["resource"] == job["job_id"]
                and record["user_email"] == USER_EMAIL,
                "one record, attributed to the user, with the job id and email",
            )
            expect(token not in json.dumps(lines), "the token is not in the audit trail")

            walk.step("clerk-deps verify on the expired token")
            result = verify_with_cli(expired, env)
            for line in (result.stdout + result.stderr).strip().splitlines():
                print(f"    | {line}")
            expect(
                result.returncode == 1
                and "token-expired" in result.stdout
                and "fix:" in result.stdout,
                "exit status 1 with the reason and the fix",
            )

            walk.step("Revoke the session in the emulator: the next call is refused at once")
            endpoint = fake.add_webhook_endpoint(f"{api_url}/webhooks/clerk")
            use_environment(
                {"CLERK_REVOCATION": "webhooks", "CLERK_WEBHOOK_SIGNING_SECRET": endpoint.secret}
            )
            session_id, token = asyncio.run(mint_through_backend_api(fake, user["id"]))
            status, _ = walk.post_job(token)
            expect(status == 201, "201 while the session is active")
            fake.revoke_session(session_id)
            delivery = fake.webhook_deliveries[-1]
            print(f"    FakeClerk sent {delivery.type} -> {delivery.status_code}")
            expect(delivery.status_code == 200, "the signed webhook was verified by the API")
            walk.expect_refusal(token, "session-revoked")

    show_browser_page()
    print("\nDemo finished: every answer was the expected one.")
    return 0


def show_browser_page() -> None:
    """The page that does all of the above from a real browser (examples/browser_demo.py)."""
    from examples.browser_demo import serve_browser_demo

    with serve_browser_demo() as page_url:
        print(f"\nBrowser page: {page_url}")
        print("    sign in through FakeClerk, then call the API: cookie, Bearer, WebSockets")
        answer = httpx.get(page_url, timeout=10)
        expect(answer.status_code == 200 and "clerk-deps" in answer.text, "the page is served")
        if sys.stdin.isatty():
            input("    open it in a browser; press Enter to stop ")


if __name__ == "__main__":
    raise SystemExit(main())
