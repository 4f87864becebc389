"""The flow of the seed document "testing-fastapi-with-clerk-jwt", as a test over real HTTP.

The seed's manual protocol was: start the API, create a Clerk session with a script, mint a
60-second token, call ``POST /jobs`` within the minute and expect 201; then check that expired,
forged and missing tokens get 401. Here FakeClerk plays Clerk and the example jobs API runs
under uvicorn, both on 127.0.0.1, configured only through ``CLERK_*`` environment variables.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clerk_deps import get_settings
from clerk_deps.testing import FakeClerk, TestIssuer, serve_app
from examples.jobs_api import app as jobs_app


@pytest.fixture
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def backend_api(clerk: FakeClerk) -> Iterator[httpx.Client]:
    """Clerk's Backend API, as the seed's create_clerk_session.py script used it."""
    headers = {"Authorization": f"Bearer {clerk.secret_key}"}
    with httpx.Client(base_url=clerk.base_url, headers=headers) as client:
        yield client


@pytest.fixture
def jobs_api(
    clerk: FakeClerk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The example jobs API served by uvicorn, configured from the environment only.

    It runs in ``tmp_path``, where its audit trail (``logs/audit/jobs``) is written.
    """
    monkeypatch.chdir(tmp_path)
    for name, value in clerk.env_vars().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with serve_app(jobs_app) as base_url, httpx.Client(base_url=base_url) as client:
        yield client
    get_settings.cache_clear()


def audit_records(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((directory / "logs" / "audit" / "jobs").glob("audit_*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def create_job(api: httpx.Client, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return api.post("/jobs", json={"name": "URS-001 test generation"}, headers=headers)


def new_session(backend_api: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    user = backend_api.post("/v1/users", json={"email_address": ["qa@example.com"]})
    assert user.status_code == 200, user.text
    session = backend_api.post("/v1/sessions", json={"user_id": user.json()["id"]})
    assert session.status_code == 200, session.text
    assert session.json()["status"] == "active"
    return user.json(), session.json()


def test_session_token_then_post_jobs_gets_201(
    clerk: FakeClerk, backend_api: httpx.Client, jobs_api: httpx.Client, tmp_path: Path
) -> None:
    user, session = new_session(backend_api)
    minted = backend_api.post(f"/v1/sessions/{session['id']}/tokens")
    assert minted.status_code == 200
    assert minted.json()["object"] == "token"
    jwt = minted.json()["jwt"]

    response = create_job(jobs_api, jwt)

    assert response.status_code == 201, response.text
    job = response.json()
    assert job["created_by"] == user["id"]
    assert job["status"] == "pending"
    # The session token carries no email; the app looked it up in the Backend API (the seed's
    # "user_email: null" in the audit log).
    assert job["created_by_email"] == "qa@example.com"
    assert clerk.count(f"/v1/users/{user['id']}", "GET") == 1
    (record,) = audit_records(tmp_path)
    assert record["action"] == "job.create" and record["resource"] == job["job_id"]
    assert (record["user_id"], record["session_id"]) == (user["id"], session["id"])
    assert record["user_email"] == "qa@example.com"
    assert record["token_iat"] == segments_iat(jwt)
    assert record["alcoa_attributable"] is True
    assert jwt not in json.dumps(record)
    me = jobs_api.get("/me", headers={"Authorization": f"Bearer {jwt}"})
    assert me.json() == {"user_id": user["id"], "session_id": session["id"], "email": None}
    # The key set was fetched once, at start-up (clerk_lifespan), not once per request.
    assert clerk.count("/.well-known/jwks.json") == 1


def segments_iat(token: str) -> int:
    payload = token.split(".")[1]
    iat: int = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iat"]
    return iat


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "token-expired"),
        ("forged", "token-invalid-signature"),
        ("missing", "session-token-missing"),
    ],
)
def test_bad_tokens_get_401_with_their_reason(
    clerk: FakeClerk,
    backend_api: httpx.Client,
    jobs_api: httpx.Client,
    tmp_path: Path,
    case: str,
    reason: str,
) -> None:
    user, session = new_session(backend_api)
    tokens = {
        # Minted by the emulator an hour ago: Clerk's 60-second lifetime long gone.
        "expired": clerk.session_token(session["id"], now=time.time() - 3600),
        # Clerk's header and kid, the right claims, somebody else's key.
        "forged": TestIssuer(issuer=clerk.base_url, kid=clerk.kid).token(
            user["id"], sid=session["id"]
        ),
        "missing": None,
    }

    response = create_job(jobs_api, tokens[case])

    assert response.status_code == 401
    assert response.json()["detail"]["reason"] == reason
    assert audit_records(tmp_path) == []  # a refused request leaves no audit record
    assert response.headers["www-authenticate"].startswith("Bearer")
    if tokens[case] is not None:
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert tokens[case] not in response.text


def test_revoking_a_session_stops_new_tokens_not_the_minted_one(
    backend_api: httpx.Client, jobs_api: httpx.Client
) -> None:
    _, session = new_session(backend_api)
    tokens = f"/v1/sessions/{session['id']}/tokens"
    minted = backend_api.post(tokens).json()["jwt"]

    assert backend_api.post(f"/v1/sessions/{session['id']}/revoke").json()["status"] == "revoked"

    assert backend_api.post(tokens).status_code == 404
    # Verification is networkless: a minted token stays valid until it expires (60 s at most),
    # which is why Clerk keeps session tokens this short.
    assert create_job(jobs_api, minted).status_code == 201
