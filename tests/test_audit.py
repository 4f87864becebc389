"""The audit trail: complete records, one file per UTC day, no lost or torn lines."""

import json
import multiprocessing
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkClaims, get_settings, require_clerk_user
from clerk_deps.audit import AuditRecorder, AuditTrail
from clerk_deps.testing import TestIssuer

USER = ClerkClaims(
    sub="user_a", sid="sess_a", iat=1_700_000_000, exp=1_700_000_060, email="a@example.com"
)
FIXED = datetime(2026, 11, 23, 23, 59, 59, 123456, tzinfo=timezone.utc)


def read_lines(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("audit_*.jsonl")):
        for line in path.read_text().splitlines():
            records.append(json.loads(line))
    return records


def test_record_is_complete(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, clock=lambda: FIXED)
    trail.record(user=USER, action="job.create", resource="job_1", request_id="req-1")
    path = tmp_path / "audit_20261123.jsonl"
    (record,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert record == {
        "timestamp": "2026-11-23T23:59:59.123Z",
        "user_id": "user_a",
        "session_id": "sess_a",
        "token_iat": 1_700_000_000,
        "user_email": "a@example.com",
        "actor_id": None,
        "org_id": None,
        "action": "job.create",
        "resource": "job_1",
        "outcome": "success",
        "request_id": "req-1",
        "alcoa_attributable": True,
        "alcoa_contemporaneous": True,
    }


def test_one_file_per_utc_day(tmp_path: Path) -> None:
    moments = iter([FIXED, FIXED + timedelta(seconds=1)])  # crosses midnight UTC
    trail = AuditTrail(tmp_path, clock=lambda: next(moments))
    trail.record(user=USER, action="a")
    trail.record(user=None, action="b", outcome="denied", details={"why": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit_20261123.jsonl",
        "audit_20261124.jsonl",
    ]
    second = read_lines(tmp_path)[1]
    assert second["user_id"] is None and second["alcoa_attributable"] is False
    assert second["details"] == {"why": "x"}


def test_fsync_option_writes_the_same(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, fsync=True, clock=lambda: FIXED)
    trail.record(user=USER, action="x")
    assert read_lines(tmp_path)[0]["action"] == "x"
    assert "fsync=True" in repr(trail)


def test_eight_threads_thousand_lines_each(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)

    def worker(n: int) -> None:
        for i in range(1_000):
            trail.record(user=USER, action="t", resource=f"{n}:{i}", details={"pad": "x" * 300})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    resources = [r["resource"] for r in read_lines(tmp_path)]
    assert len(resources) == 8_000
    assert set(resources) == {f"{n}:{i}" for n in range(8) for i in range(1_000)}


def _process_writer(directory: str, n: int) -> None:
    trail = AuditTrail(directory, clock=lambda: FIXED)
    for i in range(1_000):
        trail.record(user=USER, action="p", resource=f"{n}:{i}", details={"pad": "y" * 300})


def test_four_processes_thousand_lines_each(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(str(tmp_path), n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    resources = [r["resource"] for r in read_lines(tmp_path)]
    assert len(resources) == 4_000
    assert set(resources) == {f"{n}:{i}" for n in range(4) for i in range(1_000)}


def test_route_records_in_one_line(tmp_path: Path) -> None:
    issuer = TestIssuer()
    trail = AuditTrail(tmp_path)
    AuditDep = Annotated[AuditRecorder, Depends(trail.recorder)]
    app = FastAPI()

    @app.post("/things/{thing_id}")
    async def touch(thing_id: str, audit: AuditDep) -> dict[str, str]:
        await audit("thing.touch", resource=thing_id)
        return {"ok": thing_id}

    app.dependency_overrides[get_settings] = issuer.settings
    client = TestClient(app)
    token = issuer.token("user_route", email="r@example.com")
    response = client.post(
        "/things/t1", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "abc-123"}
    )
    assert response.status_code == 200
    response = client.post(
        "/things/t2", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "bad id;drop"}
    )
    assert client.post("/things/t3").status_code == 401  # no token: nothing recorded
    first, second = read_lines(tmp_path)
    assert first["user_id"] == "user_route" and first["resource"] == "t1"
    assert first["request_id"] == "abc-123" and first["user_email"] == "r@example.com"
    assert len(second["request_id"]) == 32 and second["request_id"] != "bad id"
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert token not in text and token.split(".")[2] not in text


def test_override_of_require_clerk_user_is_recorded(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path)
    app = FastAPI()

    @app.get("/x")
    async def x(audit: Annotated[AuditRecorder, Depends(trail.recorder)]) -> dict[str, Any]:
        return await audit("x.read")

    app.dependency_overrides[require_clerk_user] = lambda: USER
    body = TestClient(app).get("/x").json()
    assert body["user_id"] == "user_a" and read_lines(tmp_path)[0]["action"] == "x.read"
