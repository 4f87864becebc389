# testing_rotation.py
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from clerk_deps import CurrentUserDep, clerk_lifespan, get_settings
from clerk_deps.testing import FakeClerk, serve_app

app = FastAPI(lifespan=clerk_lifespan)


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str]:
    return {"user_id": user.user_id}


@pytest.fixture
def clerk() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def api(clerk: FakeClerk, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    for name, value in clerk.env_vars().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with serve_app(app) as base_url, httpx.Client(base_url=base_url) as client:
        yield client
    get_settings.cache_clear()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_after_a_rotation_only_new_tokens_pass(clerk: FakeClerk, api: httpx.Client) -> None:
    session = clerk.create_session(clerk.create_user()["id"])
    old_token = clerk.session_token(session["id"])
    assert api.get("/me", headers=bearer(old_token)).status_code == 200

    clerk.rotate_keys()  # the old key leaves the key set, as when Clerk rotates keys
    new_token = clerk.session_token(session["id"])

    assert api.get("/me", headers=bearer(new_token)).status_code == 200
    refused = api.get("/me", headers=bearer(old_token))
    assert refused.status_code == 401
    assert refused.json()["detail"]["reason"] == "jwk-kid-mismatch"


def test_a_graceful_rollover_accepts_both(clerk: FakeClerk, api: httpx.Client) -> None:
    session = clerk.create_session(clerk.create_user()["id"])
    old_token = clerk.session_token(session["id"])
    assert api.get("/me", headers=bearer(old_token)).status_code == 200

    clerk.rotate_keys(keep_previous=True)  # the old key stays published after the new one
    new_token = clerk.session_token(session["id"])

    assert api.get("/me", headers=bearer(new_token)).status_code == 200
    assert api.get("/me", headers=bearer(old_token)).status_code == 200
