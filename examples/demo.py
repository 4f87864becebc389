"""`make demo`: the example jobs API under a real server on 127.0.0.1, walked through end to end.

Runs on embedded defaults: a key pair generated here stands in for a Clerk instance, so no
Clerk account is needed. Prints each step and exits 0 when every answer is the expected one.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clerk_deps import get_settings
from clerk_deps.testing import TestIssuer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app_path: str, port: int) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread; stop it on exit."""
    config = uvicorn.Config(app_path, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{app_path} did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def step(number: int, title: str) -> None:
    print(f"\n[{number}] {title}")


def show(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = response.json()
    print(f"    -> {response.status_code} {body}")
    return response.status_code, body


def expect(condition: bool, what: str) -> None:
    if not condition:
        print(f"    FAILED: expected {what}")
        raise SystemExit(1)
    print(f"    ok: {what}")


def main() -> int:
    issuer = TestIssuer(issuer="http://127.0.0.1")
    os.environ["CLERK_ISSUER"] = issuer.issuer
    os.environ["CLERK_JWT_KEY"] = issuer.public_pem.replace("\n", "\\n")
    get_settings.cache_clear()
    print("clerk_deps demo: a local key pair plays the Clerk instance (no account needed)")
    print(f"    CLERK_ISSUER={issuer.issuer}")
    print("    CLERK_JWT_KEY=-----BEGIN PUBLIC KEY-----\\n... (generated for this run)")

    with (
        serve("examples.jobs_api:app", free_port()) as base_url,
        httpx.Client(base_url=base_url, timeout=10) as client,
    ):
        print(f"    example API (examples/jobs_api.py) serving on {base_url}")

        step(1, "POST /jobs with a fresh session token")
        token = issuer.token("user_demo", email="demo@example.com")
        status, body = show(
            client.post(
                "/jobs", json={"name": "nightly"}, headers={"Authorization": f"Bearer {token}"}
            )
        )
        expect(
            status == 201 and body.get("created_by") == "user_demo",
            "201 with the job attributed to user_demo",
        )

        step(2, "GET /me with the same token")
        status, body = show(client.get("/me", headers={"Authorization": f"Bearer {token}"}))
        expect(status == 200 and body.get("user_id") == "user_demo", "200 with the verified claims")

        step(3, "POST /jobs with no token")
        status, body = show(client.post("/jobs", json={"name": "nightly"}))
        expect(
            status == 401 and body["detail"]["reason"] == "session-token-missing",
            "401 session-token-missing",
        )

        step(4, "POST /jobs with a token that expired two minutes ago")
        expired = issuer.expired_token("user_demo")
        status, body = show(
            client.post("/jobs", json={"name": "x"}, headers={"Authorization": f"Bearer {expired}"})
        )
        expect(status == 401 and body["detail"]["reason"] == "token-expired", "401 token-expired")

    print("\nDemo finished: every answer was the expected one.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
