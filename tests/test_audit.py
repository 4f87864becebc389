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


# Every character str.splitlines() splits on, and text UTF-8 cannot encode.
LINE_BREAKERS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
LONE_SURROGATES = "\ud800-\udfff"  # apart: an adjacent pair would be one character


def test_every_line_survives_splitlines_and_lone_surrogates(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, clock=lambda: FIXED)
    nasty = f"a{LINE_BREAKERS}b{LONE_SURROGATES}c \u00e9\u4e2d"
    trail.record(user=USER, action=nasty, resource=nasty, details={nasty: [nasty, {"k": nasty}]})
    trail.record(user=USER, action="next")
    raw = (tmp_path / "audit_20261123.jsonl").read_bytes()
    raw.decode("utf-8")  # strict: the file is valid UTF-8
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["action"] == first["resource"] == nasty  # read back exactly
    assert first["details"] == {nasty: [nasty, {"k": nasty}]}
    assert second["action"] == "next"
    assert "\u00e9\u4e2d" in lines[0]  # ordinary non-ASCII text stays readable


def test_values_that_are_not_json_never_lose_the_line(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, clock=lambda: FIXED)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    trail.record(user=USER, action="odd", details={"when": FIXED, "set": {1}, "k": object()})
    trail.record(user=USER, action="cycle", details=cycle)
    trail.record(user=USER, action="deep", details={"d": deep_list(100_000)})
    odd, cyclic, deep = read_lines(tmp_path)
    assert odd["details"] == {"when": "<datetime>", "set": "<set>", "k": "<object>"}
    assert (cyclic["action"], cyclic["details"]) == ("cycle", "<dict>")
    assert (deep["action"], deep["details"]) == ("deep", "<dict>")


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_route_records_hostile_text_from_the_token_and_the_request(tmp_path: Path) -> None:
    issuer = TestIssuer()
    trail = AuditTrail(tmp_path)
    app = FastAPI()

    @app.post("/notes")
    async def note(
        body: dict[str, Any], audit: Annotated[AuditRecorder, Depends(trail.recorder)]
    ) -> dict[str, bool]:
        await audit("note.create", resource=body["title"], details=body)
        return {"ok": True}

    app.dependency_overrides[get_settings] = issuer.settings
    client = TestClient(app)
    token = issuer.token("user_hostile", email=f"x{LONE_SURROGATES}\u2028@example.com")
    # JSON escapes carry lone surrogates and line separators into the request body
    body = '{"title": "t\\ud800\\u2028\\u0085", "text": "a\\u2029b\\udfff"}'
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for _ in range(2):
        assert client.post("/notes", content=body, headers=headers).status_code == 200
    records = read_lines(tmp_path)
    assert len(records) == 2
    assert records[0]["resource"] == "t\ud800\u2028\x85"
    assert records[0]["details"]["text"] == "a\u2029b\udfff"
    assert records[0]["user_email"] == f"x{LONE_SURROGATES}\u2028@example.com"


def test_a_record_with_an_odd_timestamp_is_still_written(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path, clock=lambda: FIXED)
    trail.write({"timestamp": "not a time", "action": "a"})
    trail.write({"timestamp": "2026-11-24T01:00:00", "action": "b"})  # naive: taken as UTC
    trail.write({"action": "c"})
    assert [r["action"] for r in read_lines(tmp_path)] == ["a", "c", "b"]
    assert {p.name for p in tmp_path.iterdir()} == {"audit_20261123.jsonl", "audit_20261124.jsonl"}
