"""require_clerk_auth / require_machine / MachineAuthDep on real routes, FakeClerk on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from clerk_deps import (
    ClerkClaims,
    CurrentUserDep,
    MachineAuth,
    MachineAuthDep,
    get_settings,
    require_clerk_auth,
    require_machine,
)
from clerk_deps.testing import FakeClerk, build_machine, override_machine

SessionOrKey = Annotated[
    ClerkClaims | MachineAuth, Depends(require_clerk_auth(["session_token", "api_key"]))
]
ReportsKey = Annotated[MachineAuth, Depends(require_machine("api_key", scopes=["reports:read"]))]
OnlyM2M = Annotated[MachineAuth, Depends(require_machine(["m2m_token"]))]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/machine")
    async def machine(auth: MachineAuthDep, request: Request) -> dict[str, Any]:
        assert request.state.clerk_machine is auth
        return {"type": auth.token_type.value, "subject": auth.subject, "id": auth.id}

    @app.get("/either")
    async def either(auth: SessionOrKey, request: Request) -> dict[str, Any]:
        assert request.state.clerk_auth is auth
        if isinstance(auth, ClerkClaims):
            return {"user": auth.sub}
        return {"key": auth.id}

    @app.get("/reports")
    async def reports(auth: ReportsKey) -> dict[str, Any]:
        return {"scopes": list(auth.scopes)}

    @app.get("/m2m")
    async def m2m(auth: OnlyM2M) -> dict[str, Any]:
        return {"machine": auth.machine_id}

    return app


pytestmark = pytest.mark.usefixtures("fresh_machine_state")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeClerk) -> Iterator[TestClient]:
    app = make_app()
    app.dependency_overrides[get_settings] = fake.settings
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason(response: Any) -> str:
    return str(response.json()["detail"]["reason"])


def test_any_machine_token_on_machine_auth_dep(client: TestClient, fake: FakeClerk) -> None:
    key = fake.create_api_key("org_1")
    m2m = fake.create_m2m_token()
    jwt_m2m = fake.create_m2m_token(token_format="jwt")
    oauth = fake.create_oauth_token("user_2")
    for token, kind in [
        (key["secret"], "api_key"),
        (m2m["token"], "m2m_token"),
        (jwt_m2m["token"], "m2m_token"),
        (oauth["token"], "oauth_token"),
    ]:
        response = client.get("/machine", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["type"] == kind


def test_a_session_token_on_a_machine_route_is_a_type_mismatch(
    client: TestClient, fake: FakeClerk
) -> None:
    session = fake.create_session(fake.create_user()["id"])
    token = fake.session_token(session["id"])
    response = client.get("/machine", headers=bearer(token))
    assert response.status_code == 401
    assert reason(response) == "token-type-mismatch"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_one_route_accepts_session_tokens_and_api_keys(client: TestClient, fake: FakeClerk) -> None:
    user = fake.create_user()
    token = fake.session_token(fake.create_session(user["id"])["id"])
    assert client.get("/either", headers=bearer(token)).json() == {"user": user["id"]}
    key = fake.create_api_key()
    assert client.get("/either", headers=bearer(key["secret"])).json() == {"key": key["id"]}
    # ... and the session cookie, for browsers:
    client.cookies.set("__session", token)
    try:
        assert client.get("/either").json() == {"user": user["id"]}
    finally:
        client.cookies.clear()
    oauth = fake.create_oauth_token()
    response = client.get("/either", headers=bearer(oauth["token"]))
    assert (response.status_code, reason(response)) == (401, "token-type-mismatch")


def test_machine_tokens_are_never_read_from_a_cookie(client: TestClient, fake: FakeClerk) -> None:
    key = fake.create_api_key()
    before = fake.verify_calls()
    client.cookies.set("__session", key["secret"])
    try:
        either = client.get("/either")
        machine = client.get("/machine")
    finally:
        client.cookies.clear()
    assert (either.status_code, reason(either)) == (401, "token-type-mismatch")
    assert (machine.status_code, reason(machine)) == (401, "session-token-missing")
    assert fake.verify_calls() == before


def test_no_token_is_401_with_the_accepted_types(client: TestClient) -> None:
    response = client.get("/reports")
    assert response.status_code == 401
    assert reason(response) == "session-token-missing"
    assert "api_key" in response.json()["detail"]["message"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_scopes_are_required(client: TestClient, fake: FakeClerk) -> None:
    good = fake.create_api_key(scopes=["reports:read", "other"])
    assert client.get("/reports", headers=bearer(good["secret"])).json() == {
        "scopes": ["reports:read", "other"]
    }
    lacking = fake.create_api_key(scopes=["other"])
    response = client.get("/reports", headers=bearer(lacking["secret"]))
    assert response.status_code == 403
    assert reason(response) == "scope-required"
    assert "reports:read" in response.json()["detail"]["message"]


def test_accepts_narrows_machine_types(client: TestClient, fake: FakeClerk) -> None:
    key = fake.create_api_key()
    response = client.get("/m2m", headers=bearer(key["secret"]))
    assert (response.status_code, reason(response)) == (401, "token-type-mismatch")
    m2m = fake.create_m2m_token()
    assert client.get("/m2m", headers=bearer(m2m["token"])).json() == {"machine": fake.machine_id}


def test_over_budget_is_503_with_retry_after(fake: FakeClerk) -> None:
    app = make_app()
    app.dependency_overrides[get_settings] = lambda: fake.settings(
        machine_verify_rate=0.01, machine_verify_burst=1
    )
    first, second = fake.create_api_key(), fake.create_api_key()
    with TestClient(app) as client:
        assert client.get("/machine", headers=bearer(first["secret"])).status_code == 200
        response = client.get("/machine", headers=bearer(second["secret"]))
        assert response.status_code == 503
        assert reason(response) == "machine-verification-unavailable"
        assert int(response.headers["retry-after"]) >= 1
        assert client.get("/machine", headers=bearer(first["secret"])).status_code == 200


def test_openapi_documents_the_bearer_schemes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    machine = schemes["ClerkM2MOrOAuthOrApiKey"]
    assert machine["type"] == "http" and machine["scheme"] == "bearer"
    assert "API key" in machine["bearerFormat"] and "never from a cookie" in machine["description"]
    assert "ClerkSessionOrApiKey" in schemes
    assert "reports:read" in schemes["ClerkApiKey"]["description"]
    paths = document["paths"]
    assert paths["/machine"]["get"]["security"] == [{"ClerkM2MOrOAuthOrApiKey": []}]
    assert paths["/either"]["get"]["security"] == [{"ClerkSessionOrApiKey": []}]


def test_declaring_a_route_with_bad_arguments_fails_at_once() -> None:
    with pytest.raises(ValueError, match="session"):
        require_machine(["session_token", "api_key"])
    with pytest.raises(ValueError, match="accepts"):
        require_clerk_auth("api-key")
    with pytest.raises(ValueError, match="scopes"):
        require_machine(scopes=[""])
    assert require_machine(scopes="read").scopes == ("read",)


# -- the testing kit -------------------------------------------------------------------------


def test_override_machine_keeps_the_routes_rules() -> None:
    app = make_app()
    with TestClient(app) as client:
        with override_machine(app, subject="org_9", scopes=["reports:read"]) as machine:
            assert machine.token_type.value == "api_key"
            assert client.get("/machine").json()["subject"] == "org_9"
            assert client.get("/reports").status_code == 200
            assert client.get("/either").json() == {"key": "ak_test"}
            m2m_only = client.get("/m2m")
            assert (m2m_only.status_code, reason(m2m_only)) == (401, "token-type-mismatch")
        with override_machine(app, token_type="m2m_token"):
            assert client.get("/m2m").json() == {"machine": "mch_test"}
            lacking = client.get("/reports")
            assert lacking.status_code == 401  # an M2M token on an API-key route
        with override_machine(app):
            lacking = client.get("/reports")
            assert (lacking.status_code, reason(lacking)) == (403, "scope-required")
        assert client.get("/machine").status_code == 401  # restored: no override, no token


def test_override_machine_restores_an_earlier_override() -> None:
    app = make_app()
    dependency = next(iter(app.dependency_overrides), None)
    assert dependency is None
    with override_machine(app, subject="user_1"):
        with override_machine(app, subject="user_2"), TestClient(app) as client:
            assert client.get("/machine").json()["subject"] == "user_2"
        with TestClient(app) as client:
            assert client.get("/machine").json()["subject"] == "user_1"
    assert app.dependency_overrides == {}


def test_build_machine_defaults() -> None:
    assert build_machine().subject == "user_test"
    oauth = build_machine(token_type="oauth_token")
    assert oauth.client_id == "oauth_app_test" and oauth.id.startswith("oat_")
    m2m = build_machine({"token_type": "m2m_token", "id": "mt_1", "subject": "mch_1"}, scopes=["x"])
    assert m2m.scopes == ["x"]
    assert build_machine(m2m) is not m2m and build_machine(m2m, name="n").name == "n"


def test_no_token_on_a_session_route_without_keys_is_a_configuration_error() -> None:
    from clerk_deps import ClerkSettings

    app = make_app()
    app.dependency_overrides[get_settings] = lambda: ClerkSettings()
    with TestClient(app) as client:
        response = client.get("/either")
    assert (response.status_code, reason(response)) == (500, "auth-not-configured")
    assert repr(require_machine()) == "require_machine(api_key, m2m_token, oauth_token)"


def test_session_only_routes_call_machine_tokens_a_type_mismatch(fake: FakeClerk) -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep) -> str:
        return user.sub

    app.dependency_overrides[get_settings] = fake.settings
    before = fake.verify_calls()
    with TestClient(app) as client:
        for token in ("ak_" + "k" * 40, "mt_" + "m" * 40, "oat_" + "o" * 40):
            response = client.get("/me", headers=bearer(token))
            assert (response.status_code, reason(response)) == (401, "token-type-mismatch")
    assert fake.verify_calls() == before
