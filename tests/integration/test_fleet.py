"""A fleet: three separate uvicorn processes (examples/fleet_app.py) sharing one real Redis.

A session.revoked delivery to one worker makes every worker refuse the session within a
second; a worker started later refuses it from its first request; killing Redis loses no
revocation already received and produces no 5xx; a revocation made during the outage reaches
the others once Redis is back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clerk_deps.testing import FakeClerk, TestIssuer
from clerk_deps.webhooks import sign_webhook

from .redis_server import RedisServer, free_port, redis_server, wait_until

__all__ = ["redis_server"]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_ZmxlZXQtZmxlZXQtZmxlZXQtZmxlZXQtZmxlZXQtMTI="
ISSUER = TestIssuer()


class Worker:
    """``uvicorn examples.fleet_app:app`` in its own process, on its own port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="fleet-worker-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.fleet_app:app", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_started(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited:\n{self.output()}")
            try:
                return self.client.get("/openapi.json").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what=f"worker on {self.port}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def me(self, token: str) -> tuple[int, str | None]:
        response = self.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, (response.status_code, response.text, self.output())
        body: dict[str, Any] = response.json()
        return response.status_code, body.get("detail", {}).get("reason")

    def deliver(self, event_type: str, data: dict[str, Any], msg_id: str) -> httpx.Response:
        body = json.dumps({"object": "event", "type": event_type, "data": data}).encode()
        stamp = int(time.time())
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": str(stamp),
            "svix-signature": sign_webhook(SECRET, msg_id, stamp, body),
            "content-type": "application/json",
        }
        response = self.client.post("/webhooks/clerk", content=body, headers=headers)
        assert response.status_code < 500, (response.text, self.output())
        return response

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a worker that hangs
            self.process.kill()
        self.log.close()


def fleet_env(redis_url: str, fake: FakeClerk | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    env.update(
        {
            "CLERK_ISSUER": ISSUER.issuer,
            "CLERK_JWT_KEY": ISSUER.public_pem,
            "CLERK_REVOCATION": "webhooks",
            "CLERK_REDIS_URL": redis_url,
            "CLERK_WEBHOOK_SIGNING_SECRET": SECRET,
        }
    )
    if fake is not None:  # the Backend API that verifies machine tokens
        env.update({"CLERK_API_URL": fake.base_url, "CLERK_SECRET_KEY": fake.secret_key})
    return env


@pytest.fixture
def start_workers(redis_server: RedisServer) -> Iterator[Any]:
    started: list[Worker] = []

    def start(count: int, fake: FakeClerk | None = None) -> list[Worker]:
        workers = [Worker(fleet_env(redis_server.url, fake)) for _ in range(count)]
        started.extend(workers)
        for worker in workers:
            worker.wait_started()
        return workers

    yield start
    for worker in started:
        worker.stop()


def test_a_revocation_reaches_every_worker_within_a_second(
    redis_server: RedisServer, start_workers: Any
) -> None:
    workers: list[Worker] = start_workers(3)
    token = ISSUER.token("user_fleet", sid="sess_fleet")
    other = ISSUER.token("user_fleet", sid="sess_other")
    for worker in workers:
        assert worker.me(token) == (200, None)  # verified, and now in each worker's cache

    workers[0].deliver("session.revoked", {"id": "sess_fleet", "user_id": "user_fleet"}, "m1")
    sent = time.monotonic()
    for worker in workers:
        wait_until(lambda w=worker: w.me(token) == (401, "session-revoked"), timeout=5)
    elapsed = time.monotonic() - sent
    assert elapsed < 1.0, f"revocation took {elapsed:.3f} s to reach every worker"
    assert all(worker.me(other) == (200, None) for worker in workers)

    (late,) = start_workers(1)  # started after the revocation: loads it before answering
    assert late.me(token) == (401, "session-revoked")


def test_killing_redis_loses_no_revocation_and_answers_no_5xx(
    redis_server: RedisServer, start_workers: Any
) -> None:
    workers: list[Worker] = start_workers(3)
    revoked = ISSUER.token("user_k", sid="sess_known")
    for worker in workers:
        assert worker.me(revoked) == (200, None)
    workers[0].deliver("session.ended", {"id": "sess_known"}, "m_known")
    for worker in workers:
        wait_until(lambda w=worker: w.me(revoked)[0] == 401, timeout=5)

    redis_server.stop()
    during = ISSUER.token("user_d", sid="sess_during")
    fine = ISSUER.token("user_f", sid="sess_fine")
    for _ in range(3):  # every request in the outage: an answer, never a 5xx (me() asserts)
        for worker in workers:
            assert worker.me(revoked) == (401, "session-revoked")
            assert worker.me(fine) == (200, None)
            assert worker.me(during) == (200, None)
    delivered = workers[1].deliver("session.revoked", {"id": "sess_during"}, "m_during")
    assert delivered.status_code == 200
    assert workers[1].me(during) == (401, "session-revoked")  # at once, in that process

    redis_server.start()  # back on the same port: the queued revocation is published
    for worker in workers:
        wait_until(lambda w=worker: w.me(during)[0] == 401, timeout=15, what="catch-up")
        assert worker.me(revoked) == (401, "session-revoked")
        assert "unreachable" in worker.output()


def test_a_machine_token_verified_by_one_worker_is_not_verified_again(
    redis_server: RedisServer, start_workers: Any
) -> None:
    with FakeClerk().serve() as fake:
        workers: list[Worker] = start_workers(3, fake)
        key = fake.create_api_key("org_fleet")
        headers = {"Authorization": f"Bearer {key['secret']}"}
        before = fake.verify_calls()
        for worker in workers:
            response = worker.client.get("/machine", headers=headers)
            assert response.json() == {"subject": "org_fleet"}, worker.output()
        assert fake.verify_calls() - before == 1  # one worker asked Clerk; two read Redis
