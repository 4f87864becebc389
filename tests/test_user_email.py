"""Email enrichment: looked up once per user, coalesced, and never fatal."""

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from clerk_deps import ClerkClaims, get_settings
from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.user_email import (
    CurrentUserWithEmailDep,
    EmailLookup,
    clear_email_lookups,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _fresh_lookups() -> Iterator[None]:
    clear_email_lookups()
    yield
    clear_email_lookups()


@pytest.fixture
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


def make_app(fake: FakeClerk, **overrides: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserWithEmailDep, request: Request) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email, "state": request.state.clerk_user.email}

    settings = fake.settings(jwt_key=fake.public_pem, **overrides)
    app.dependency_overrides[get_settings] = lambda: settings
    return app


def token_for(fake: FakeClerk, email: str | None = "grace@example.com") -> tuple[str, str]:
    user = fake.create_user(email_address=email) if email else fake.create_user()
    session = fake.create_session(user["id"])
    return user["id"], fake.session_token(session["id"])


async def get_me(app: FastAPI, token: str, n: int = 1) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        responses = await asyncio.gather(
            *(client.get("/me", headers={"Authorization": f"Bearer {token}"}) for _ in range(n))
        )
    assert all(r.status_code == 200 for r in responses), responses[0].text
    return [r.json() for r in responses]


async def test_twenty_concurrent_requests_make_one_call(fake: FakeClerk) -> None:
    user_id, token = token_for(fake)
    bodies = await get_me(make_app(fake), token, n=20)
    assert {b["email"] for b in bodies} == {"grace@example.com"}
    assert {b["state"] for b in bodies} == {"grace@example.com"}
    assert fake.count(f"/v1/users/{user_id}", "GET") == 1
    await get_me(make_app(fake), token)  # cached per user
    assert fake.count(f"/v1/users/{user_id}", "GET") == 1


async def test_email_in_token_needs_no_call(fake: FakeClerk) -> None:
    user = fake.create_user(email_address="in-token@example.com")
    session = fake.create_session(user["id"])
    issuer_token = fake.session_token(session["id"], email="claim@example.com")
    (body,) = await get_me(make_app(fake), issuer_token)
    assert body["email"] == "claim@example.com"
    assert fake.count(f"/v1/users/{user['id']}", "GET") == 0


async def test_backend_failure_keeps_the_request_alive(
    fake: FakeClerk, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = token_for(fake)
    app = make_app(fake, secret_key="sk_test_wrong_key")
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    (body,) = await get_me(app, token)
    assert body["email"] is None
    assert any("could not look up the email" in r.getMessage() for r in caplog.records)
    assert "sk_test_wrong_key" not in caplog.text


async def test_user_without_email(fake: FakeClerk) -> None:
    _, token = token_for(fake, email=None)
    (body,) = await get_me(make_app(fake), token)
    assert body["email"] is None


async def test_no_secret_key_warns(fake: FakeClerk, caplog: pytest.LogCaptureFixture) -> None:
    _, token = token_for(fake)
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    (body,) = await get_me(make_app(fake, secret_key=None), token)
    assert body["email"] is None
    assert "CLERK_SECRET_KEY is not set" in caplog.text


class _FlakyAPI:
    def __init__(self) -> None:
        self.calls = 0

    async def get_user(self, user_id: str) -> dict[str, Any]:
        from clerk_deps.backend_api import ClerkAPIError

        self.calls += 1
        raise ClerkAPIError("down", code="network_error")


async def test_failures_are_not_retried_until_failure_ttl() -> None:
    now = [0.0]
    api = _FlakyAPI()
    lookup = EmailLookup(api, failure_ttl=10, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await lookup.primary_email("user_1") is None
    assert await lookup.primary_email("user_1") is None
    assert api.calls == 1
    now[0] = 11
    assert await lookup.primary_email("user_1") is None
    assert api.calls == 2


async def test_cache_is_bounded() -> None:
    class Echo:
        async def get_user(self, user_id: str) -> dict[str, Any]:
            return {
                "primary_email_address_id": "e",
                "email_addresses": [{"id": "e", "email_address": f"{user_id}@example.com"}],
            }

    lookup = EmailLookup(Echo(), max_size=2)  # type: ignore[arg-type]
    for name in ("a", "b", "c"):
        assert await lookup.primary_email(name) == f"{name}@example.com"
    assert len(lookup._known) == 2 and "a" not in lookup._known


def test_claims_model_copy_keeps_the_original() -> None:
    original = ClerkClaims(sub="user_x", iat=1, exp=2)
    enriched = original.model_copy(update={"email": "x@example.com"})
    assert original.email is None and enriched.email == "x@example.com"


async def test_random_kids_are_throttled_even_with_a_zero_ttl(fake: FakeClerk) -> None:
    """CLERK_JWKS_CACHE_TTL=0 refetches for known kids, but unknown kids still wait the
    cooldown: a flood of random kids cannot turn into a flood of key-set fetches."""
    from clerk_deps import ClerkAuthError, verify_token
    from clerk_deps.testing import TestIssuer

    settings = fake.settings(jwks_cache_ttl=0, jwks_refresh_cooldown=60, token_cache_size=0)
    _, token = token_for(fake)
    await verify_token(token, settings)
    fetches = fake.count("/.well-known/jwks.json")
    assert fetches == 1
    for n in range(20):
        forger = TestIssuer(issuer=fake.base_url, kid=f"ins_random_{n}")
        with pytest.raises(ClerkAuthError) as error:
            await verify_token(forger.token(), settings)
        assert error.value.reason.value == "jwk-kid-mismatch"
    assert fake.count("/.well-known/jwks.json") == fetches
