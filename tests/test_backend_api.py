"""The Backend API client against FakeClerk: shapes, Clerk error bodies, timeouts, secrecy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clerk_deps import verify_token
from clerk_deps.backend_api import ClerkAPIError, ClerkBackendAPI, primary_email_address
from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.testing.server import serve_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
async def in_process() -> AsyncIterator[tuple[FakeClerk, ClerkBackendAPI]]:
    fake = FakeClerk()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield fake, ClerkBackendAPI(fake.secret_key, api_url=fake.base_url, client=client)


async def test_user_session_and_token_over_loopback(served: FakeClerk) -> None:
    api = ClerkBackendAPI.from_settings(served.settings())
    user = await api.create_user(email_address=["ada@example.com"], first_name="Ada")
    assert user["id"].startswith("user_")
    fetched = await api.get_user(user["id"])
    assert primary_email_address(fetched) == "ada@example.com"
    session = await api.create_session(user["id"])
    assert session["object"] == "session" and session["status"] == "active"
    token = await api.create_session_token(session["id"], expires_in_seconds=120)
    claims = await verify_token(token, served.settings())
    assert claims.sub == user["id"] and claims.sid == session["id"]
    assert claims.exp - claims.iat == 120
    jwks = await api.get_jwks()
    assert [key["kid"] for key in jwks["keys"]] == [served.kid]


async def test_template_token(in_process: tuple[FakeClerk, ClerkBackendAPI]) -> None:
    fake, api = in_process
    fake.add_jwt_template("backend", claims={"role": "reader"})
    user = fake.create_user(email_address="t@example.com")
    session = fake.create_session(user["id"])
    token = await api.create_session_token(session["id"], template="backend")
    settings = fake.settings(jwt_key=fake.public_pem, accept_jwt_templates=True)
    claims = await verify_token(token, settings)
    assert claims.sid is None and claims.model_extra and claims.model_extra["role"] == "reader"


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda api: api.get_user("user_missing"), 404, "resource_not_found"),
        (lambda api: api.create_session("user_missing"), 404, "resource_not_found"),
        (lambda api: api.create_session_token("sess_missing"), 404, "resource_not_found"),
    ],
)
async def test_clerk_errors_become_typed_exceptions(
    in_process: tuple[FakeClerk, ClerkBackendAPI], call: Any, status: int, code: str
) -> None:
    _, api = in_process
    with pytest.raises(ClerkAPIError) as error:
        await call(api)
    assert error.value.status_code == status and error.value.code == code
    assert error.value.errors and error.value.long_message
    assert f"HTTP {status}" in str(error.value)


async def test_invalid_lifetime_is_a_422(in_process: tuple[FakeClerk, ClerkBackendAPI]) -> None:
    fake, api = in_process
    session = fake.create_session(fake.create_user(email_address="x@example.com")["id"])
    with pytest.raises(ClerkAPIError) as error:
        await api.create_session_token(session["id"], expires_in_seconds=5)
    assert error.value.status_code == 422


async def test_wrong_secret_is_rejected(in_process: tuple[FakeClerk, ClerkBackendAPI]) -> None:
    fake, _ = in_process
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        api = ClerkBackendAPI("sk_test_wrong", api_url=fake.base_url, client=client)
        with pytest.raises(ClerkAPIError) as error:
            await api.get_jwks()
    assert error.value.status_code == 401 and error.value.code


def _odd_server() -> Starlette:
    release = asyncio.Event()

    async def slow(request: Request) -> Response:
        await asyncio.wait_for(release.wait(), timeout=5)
        return PlainTextResponse("late")  # pragma: no cover - the client gave up

    async def not_json(request: Request) -> Response:
        return PlainTextResponse("<html>oops</html>", status_code=502)

    async def ok_text(request: Request) -> Response:
        return PlainTextResponse("fine, but not JSON")

    async def no_jwt(request: Request) -> Response:
        return Response('{"object": "token"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/users/{user_id}", slow),
            Route("/v1/jwks", not_json),
            Route("/v1/sessions", ok_text, methods=["POST"]),
            Route("/v1/sessions/{sid}/tokens", no_jwt, methods=["POST"]),
        ]
    )


async def test_timeouts_and_garbage_answers() -> None:
    with serve_app(_odd_server(), lifespan="off") as url:
        api = ClerkBackendAPI("sk_test_x", api_url=url, timeout=0.2)
        with pytest.raises(ClerkAPIError) as timeout:
            await api.get_user("user_1")
        assert timeout.value.code == "timeout" and timeout.value.status_code is None
        assert "no answer" in str(timeout.value)
        with pytest.raises(ClerkAPIError) as bad_gateway:
            await api.get_jwks()
        assert bad_gateway.value.status_code == 502 and "HTTP 502" in bad_gateway.value.message
        with pytest.raises(ClerkAPIError) as not_json:
            await api.create_session("user_1")
        assert "JSON object" in not_json.value.message
        with pytest.raises(ClerkAPIError, match="jwt"):
            await api.create_session_token("sess_1")


async def test_unreachable_server() -> None:
    with serve_app(_odd_server(), lifespan="off") as url:
        pass  # the port is closed again
    api = ClerkBackendAPI("sk_test_x", api_url=url, timeout=1)
    with pytest.raises(ClerkAPIError) as error:
        await api.get_jwks()
    assert error.value.code == "network_error"


def test_secret_never_in_repr_or_errors() -> None:
    api = ClerkBackendAPI("sk_test_topsecret", api_url="https://api.example")
    assert "sk_test_topsecret" not in repr(api)
    assert "sk_test_topsecret" not in str(ClerkAPIError("x", code="y"))


def test_from_settings_needs_a_secret() -> None:
    with pytest.raises(ClerkAPIError, match="CLERK_SECRET_KEY"):
        ClerkBackendAPI.from_settings(FakeClerk().settings(secret_key=None))


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (
            {
                "primary_email_address_id": "e2",
                "email_addresses": [
                    {"id": "e1", "email_address": "old@example.com"},
                    {"id": "e2", "email_address": "new@example.com"},
                ],
            },
            "new@example.com",
        ),
        ({"primary_email_address_id": None, "email_addresses": []}, None),
        ({"primary_email_address_id": "e9", "email_addresses": [{"id": "e1"}]}, None),
        ({"primary_email_address_id": "e1", "email_addresses": "nope"}, None),
        (
            {
                "primary_email_address_id": "e1",
                "email_addresses": [{"id": "e1", "email_address": 5}],
            },
            None,
        ),
    ],
)
def test_primary_email_address(user: dict[str, Any], expected: str | None) -> None:
    assert primary_email_address(user) == expected
