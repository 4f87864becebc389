# testing_fakeclerk.py
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from clerk_deps import CurrentUserDep, clerk_lifespan, get_settings
from clerk_deps.testing import FakeClerk, FakeClerkError, serve_app

app = FastAPI(lifespan=clerk_lifespan)


@app.post("/jobs", status_code=201)
async def create_job(user: CurrentUserDep) -> dict[str, str]:
    return {"created_by": user.user_id}


@pytest.fixture
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:  # a local Clerk on http://127.0.0.1:<free port>
        yield fake


@pytest.fixture
def api(clerk: FakeClerk, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    for name, value in clerk.env_vars().items():  # CLERK_ISSUER, CLERK_SECRET_KEY, ...
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with serve_app(app) as base_url, httpx.Client(base_url=base_url) as client:
        yield client
    get_settings.cache_clear()


def test_create_a_session_mint_a_token_call_the_api(clerk: FakeClerk, api: httpx.Client) -> None:
    backend_api = httpx.Client(
        base_url=clerk.base_url, headers={"Authorization": f"Bearer {clerk.secret_key}"}
    )
    with backend_api:
        user = backend_api.post("/v1/users", json={"email_address": ["ada@example.com"]}).json()
        session = backend_api.post("/v1/sessions", json={"user_id": user["id"]}).json()
        jwt = backend_api.post(f"/v1/sessions/{session['id']}/tokens").json()["jwt"]

    response = api.post("/jobs", headers={"Authorization": f"Bearer {jwt}"})

    assert response.status_code == 201
    assert response.json() == {"created_by": user["id"]}


def test_a_revoked_session_mints_no_more_tokens(clerk: FakeClerk, api: httpx.Client) -> None:
    user = clerk.create_user(email_address="ada@example.com")  # the same steps, without HTTP
    session = clerk.create_session(user["id"])
    token = clerk.session_token(session["id"])
    assert api.post("/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 201

    clerk.revoke_session(session["id"])

    with pytest.raises(FakeClerkError) as refused:
        clerk.session_token(session["id"])
    assert refused.value.status_code == 404
