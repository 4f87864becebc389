"""A test module written the way a user of clerk-deps writes one.

It imports only the public API (``clerk_deps`` and ``clerk_deps.testing``) and uses the
``clerk_issuer`` and ``clerk_token`` fixtures without importing or registering anything: the
pytest11 entry point provides them. The app under test would normally live in the user's own
package; it is defined here to keep the example in one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from clerk_deps import (
    ClerkClaims,
    CurrentUserDep,
    OptionalUserDep,
    get_settings,
    require_org_permission,
)
from clerk_deps.testing import TestIssuer, override_clerk_user

app = FastAPI()
NOTES: dict[str, list[str]] = {}


@app.get("/notes")
async def list_notes(user: CurrentUserDep) -> list[str]:
    return NOTES.get(user.user_id, [])


@app.post("/notes", status_code=201)
async def add_note(note: dict[str, str], user: CurrentUserDep, request: Request) -> dict[str, Any]:
    NOTES.setdefault(user.user_id, []).append(note["text"])
    return {"owner": request.state.clerk_user.user_id, "count": len(NOTES[user.user_id])}


@app.get("/greeting")
async def greeting(user: OptionalUserDep) -> dict[str, str]:
    return {"hello": user.user_id if user else "stranger"}


@app.get("/reports")
async def reports(
    user: Annotated[ClerkClaims, Depends(require_org_permission("org:reports:read"))],
) -> dict[str, str | None]:
    return {"org": user.org_id}


@pytest.fixture
def client(clerk_issuer: TestIssuer) -> Iterator[TestClient]:
    NOTES.clear()
    app.dependency_overrides[get_settings] = clerk_issuer.settings
    yield TestClient(app)
    app.dependency_overrides.clear()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_signed_in_user_adds_and_lists_notes(client: TestClient, clerk_token: str) -> None:
    created = client.post("/notes", json={"text": "buy milk"}, headers=auth(clerk_token))
    assert created.status_code == 201
    assert created.json() == {"owner": "user_test", "count": 1}
    assert client.get("/notes", headers=auth(clerk_token)).json() == ["buy milk"]


def test_users_do_not_see_each_others_notes(client: TestClient, clerk_issuer: TestIssuer) -> None:
    client.post("/notes", json={"text": "secret"}, headers=auth(clerk_issuer.token("user_a")))
    assert client.get("/notes", headers=auth(clerk_issuer.token("user_b"))).json() == []


def test_anonymous_requests_are_refused_or_greeted(client: TestClient) -> None:
    refused = client.get("/notes")
    assert refused.status_code == 401
    assert refused.json()["detail"]["reason"] == "session-token-missing"
    assert client.get("/greeting").json() == {"hello": "stranger"}


def test_expired_and_forged_tokens_are_refused(
    client: TestClient, clerk_issuer: TestIssuer
) -> None:
    expired = client.get("/notes", headers=auth(clerk_issuer.expired_token()))
    forged = client.get("/notes", headers=auth(clerk_issuer.forged_token()))
    assert expired.json()["detail"]["reason"] == "token-expired"
    assert forged.json()["detail"]["reason"] == "token-invalid-signature"


def test_org_permissions_from_a_real_token(client: TestClient, clerk_issuer: TestIssuer) -> None:
    reader = clerk_issuer.token(org_id="org_acme", org_permissions=["org:reports:read"])
    outsider = clerk_issuer.token(org_id="org_acme", org_role="member")
    assert client.get("/reports", headers=auth(reader)).json() == {"org": "org_acme"}
    denied = client.get("/reports", headers=auth(outsider))
    assert denied.status_code == 403
    assert denied.json()["detail"]["reason"] == "org-permission-required"


def test_route_logic_without_tokens(client: TestClient) -> None:
    with override_clerk_user(app, sub="user_override"):
        assert client.post("/notes", json={"text": "x"}).json()["owner"] == "user_override"
        assert client.get("/greeting").json() == {"hello": "user_override"}
    assert client.get("/notes").status_code == 401
