"""FakeClerk answers like Clerk: paths, JSON shapes, error bodies, tokens and key sets."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clerk_deps import (
    ClerkAuthError,
    ErrorReason,
    get_settings,
    verify_token,
)
from clerk_deps._http import close_shared_client
from clerk_deps.settings import issuer_from_publishable_key
from clerk_deps.testing import (
    SESSION_CATEGORY,
    TEMPLATE_CATEGORY,
    FakeClerk,
    FakeClerkError,
    TestIssuer,
    serve_app,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def _close_http() -> AsyncIterator[None]:
    """Close the package's shared HTTP client of this test's event loop afterwards."""
    yield
    await close_shared_client()


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture
async def bapi(fake: FakeClerk) -> AsyncIterator[httpx.AsyncClient]:
    """A Backend API client for the in-process emulator, with its secret key."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app),
        base_url=fake.base_url,
        headers={"Authorization": f"Bearer {fake.secret_key}"},
    ) as client:
        yield client


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return value

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def assert_clerk_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors", "clerk_trace_id"}
    (error,) = body["errors"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["long_message"], str) and error["long_message"]
    return error


async def new_session(
    bapi: httpx.AsyncClient, **user: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    created = (await bapi.post("/v1/users", json=user)).json()
    session = (await bapi.post("/v1/sessions", json={"user_id": created["id"]})).json()
    return created, session


# -- authentication of the Backend API ----------------------------------------------------------

V1_CALLS = [
    ("GET", "/v1/jwks"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users/user_1"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions/sess_1"),
    ("POST", "/v1/sessions/sess_1/revoke"),
    ("POST", "/v1/sessions/sess_1/tokens"),
    ("POST", "/v1/sessions/sess_1/tokens/api"),
    ("GET", "/v1/not-an-endpoint"),
]


@pytest.mark.parametrize(("method", "path"), V1_CALLS)
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "authorization_header_format_invalid"),
        ("Basic abc", "authorization_header_format_invalid"),
        ("Bearer ", "authorization_header_format_invalid"),
        ("Bearer sk_test_wrong", "clerk_key_invalid"),
    ],
)
async def test_every_v1_endpoint_needs_the_secret_key(
    fake: FakeClerk, method: str, path: str, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url=fake.base_url
    ) as client:
        response = await client.request(method, path, headers=headers, json={})
    assert_clerk_error(response, 401, code)
    assert fake.secret_key not in response.text
    assert "sk_test_wrong" not in response.text


async def test_the_secret_key_scheme_is_case_insensitive(fake: FakeClerk) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url=fake.base_url
    ) as client:
        response = await client.get(
            "/v1/jwks", headers={"Authorization": f"bearer {fake.secret_key}"}
        )
    assert response.status_code == 200


def test_repr_hides_the_secret_key(fake: FakeClerk) -> None:
    assert fake.secret_key.startswith("sk_test_")
    assert fake.secret_key not in repr(fake)
    assert repr(fake) == f"FakeClerk(base_url='https://fake-clerk.test', kid='{fake.kid}')"
    assert FakeClerk(secret_key="sk_test_mine").secret_key == "sk_test_mine"


# -- key sets ------------------------------------------------------------------------------------


async def test_public_and_backend_key_sets_serve_the_signing_key(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url=fake.base_url
    ) as anonymous:
        public = await anonymous.get("/.well-known/jwks.json")
    backend = await bapi.get("/v1/jwks")
    assert public.status_code == backend.status_code == 200
    assert public.json() == backend.json() == fake.jwks()
    (jwk,) = public.json()["keys"]
    assert jwk["kid"] == fake.kid and fake.kid.startswith("ins_")
    assert {jwk["kty"], jwk["alg"], jwk["use"]} == {"RSA", "RS256", "sig"}


async def test_rotation_replaces_the_key_unless_asked_to_keep_it(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    first = fake.kid
    second = fake.rotate_keys()
    assert second != first and fake.kid == second
    assert [k["kid"] for k in (await bapi.get("/v1/jwks")).json()["keys"]] == [second]
    third = fake.rotate_keys(keep_previous=True)
    assert [k["kid"] for k in (await bapi.get("/v1/jwks")).json()["keys"]] == [third, second]
    _, session = await new_session(bapi)
    jwt = (await bapi.post(f"/v1/sessions/{session['id']}/tokens")).json()["jwt"]
    assert segments(jwt)[0]["kid"] == third


async def test_a_key_set_outage_answers_with_clerks_error_body(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    with fake.jwks_outage(502):
        assert_clerk_error(await bapi.get("/v1/jwks"), 502, "internal_clerk_error")
        public = await bapi.get("/.well-known/jwks.json")
        assert public.status_code == 502
    assert (await bapi.get("/v1/jwks")).status_code == 200


# -- users ---------------------------------------------------------------------------------------


async def test_create_and_get_a_user(fake: FakeClerk, bapi: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    response = await bapi.post(
        "/v1/users",
        json={
            "email_address": ["ada@example.com", "ada@work.example"],
            "first_name": "Ada",
            "last_name": "Lovelace",
            "public_metadata": {"role": "analyst"},
            "password": "ignored-by-the-emulator",
        },
    )
    assert response.status_code == 200
    user = response.json()
    assert user["id"].startswith("user_") and user["object"] == "user"
    assert (user["first_name"], user["last_name"]) == ("Ada", "Lovelace")
    assert user["public_metadata"] == {"role": "analyst"}
    primary, second = user["email_addresses"]
    assert primary["object"] == "email_address" and primary["id"].startswith("idn_")
    assert primary["email_address"] == "ada@example.com"
    assert primary["verification"]["status"] == "verified"
    assert primary["verification"]["strategy"] == "admin"
    assert user["primary_email_address_id"] == primary["id"] != second["id"]
    assert before <= user["created_at"] <= int(time.time() * 1000)
    assert user["updated_at"] == user["created_at"]
    fetched = await bapi.get(f"/v1/users/{user['id']}")
    assert fetched.status_code == 200 and fetched.json() == user
    assert fake.get_user(user["id"]) == user


async def test_a_user_without_details_is_allowed(bapi: httpx.AsyncClient) -> None:
    response = await bapi.post("/v1/users")
    assert response.status_code == 200
    assert response.json()["email_addresses"] == []
    assert response.json()["primary_email_address_id"] is None


async def test_an_unknown_user_is_not_found(bapi: httpx.AsyncClient) -> None:
    error = assert_clerk_error(await bapi.get("/v1/users/user_nope"), 404, "resource_not_found")
    assert "user_nope" in error["long_message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"email_address": "ada@example.com"}, 422, "form_param_format_invalid", "email_address"),
        ({"email_address": ["not-an-email"]}, 422, "form_param_format_invalid", "email_address"),
        ({"first_name": 7}, 422, "form_param_format_invalid", "first_name"),
        ({"public_metadata": ["x"]}, 422, "form_param_format_invalid", "public_metadata"),
        ([1, 2], 400, "request_body_invalid", None),
    ],
)
async def test_invalid_user_input_gets_a_clerk_error(
    bapi: httpx.AsyncClient, body: Any, status: int, code: str, param: str | None
) -> None:
    error = assert_clerk_error(await bapi.post("/v1/users", json=body), status, code)
    assert error.get("meta", {}).get("param_name") == param


async def test_a_body_that_is_not_json_is_refused(bapi: httpx.AsyncClient) -> None:
    response = await bapi.post("/v1/users", content=b"{not json")
    assert_clerk_error(response, 400, "request_body_invalid")


async def test_an_email_address_can_be_taken_once(bapi: httpx.AsyncClient) -> None:
    assert (await bapi.post("/v1/users", json={"email_address": ["a@b.example"]})).is_success
    again = await bapi.post("/v1/users", json={"email_address": ["A@b.example"]})
    assert_clerk_error(again, 422, "form_identifier_exists")


# -- sessions ------------------------------------------------------------------------------------


async def test_create_get_and_revoke_a_session(bapi: httpx.AsyncClient) -> None:
    user, session = await new_session(bapi, email_address=["ada@example.com"])
    assert session["object"] == "session"
    assert session["id"].startswith("sess_") and session["client_id"].startswith("client_")
    assert session["user_id"] == user["id"]
    assert session["status"] == "active"
    assert session["created_at"] == session["updated_at"] == session["last_active_at"]
    assert session["created_at"] < session["expire_at"] < session["abandon_at"]
    assert (await bapi.get(f"/v1/sessions/{session['id']}")).json() == session
    revoked = await bapi.post(f"/v1/sessions/{session['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert (await bapi.get(f"/v1/sessions/{session['id']}")).json()["status"] == "revoked"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "form_param_missing"),
        ({"user_id": 5}, 422, "form_param_format_invalid"),
        ({"user_id": "user_nope"}, 404, "resource_not_found"),
    ],
)
async def test_a_session_needs_an_existing_user(
    bapi: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    assert_clerk_error(await bapi.post("/v1/sessions", json=body), status, code)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/sessions/sess_nope"),
        ("POST", "/v1/sessions/sess_nope/revoke"),
        ("POST", "/v1/sessions/sess_nope/tokens"),
        ("POST", "/v1/sessions/sess_nope/tokens/api"),
    ],
)
async def test_an_unknown_session_is_not_found(
    bapi: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_clerk_error(await bapi.request(method, path), 404, "resource_not_found")


async def test_unknown_paths_and_methods_get_clerk_errors(bapi: httpx.AsyncClient) -> None:
    assert_clerk_error(await bapi.get("/v1/organizations"), 404, "resource_not_found")
    assert_clerk_error(await bapi.delete("/v1/users"), 405, "request_method_invalid")
    assert_clerk_error(await bapi.get("/nowhere"), 404, "resource_not_found")


# -- session tokens ------------------------------------------------------------------------------


async def test_a_session_token_is_a_clerk_v2_session_token(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    user, session = await new_session(bapi)
    response = await bapi.post(f"/v1/sessions/{session['id']}/tokens")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"object", "jwt"} and body["object"] == "token"
    header, payload = segments(body["jwt"])
    assert header == {"alg": "RS256", "cat": SESSION_CATEGORY, "kid": fake.kid, "typ": "JWT"}
    assert payload["sub"] == user["id"]
    assert payload["sid"] == session["id"]
    assert payload["iss"] == fake.base_url
    assert payload["v"] == 2
    assert payload["exp"] - payload["iat"] == 60
    assert payload["iat"] - payload["nbf"] == 10
    assert "azp" not in payload  # tokens minted by the Backend API carry no azp
    claims = await verify_token(body["jwt"], fake.settings(jwt_key=fake.public_pem))
    assert (claims.sub, claims.sid) == (user["id"], session["id"])


@pytest.mark.parametrize("seconds", [30, 3600, 315_360_000])
async def test_expires_in_seconds_sets_the_lifetime(bapi: httpx.AsyncClient, seconds: int) -> None:
    _, session = await new_session(bapi)
    response = await bapi.post(
        f"/v1/sessions/{session['id']}/tokens", json={"expires_in_seconds": seconds}
    )
    _, payload = segments(response.json()["jwt"])
    assert payload["exp"] - payload["iat"] == seconds


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (29, "form_param_value_invalid"),
        (315_360_001, "form_param_value_invalid"),
        (0, "form_param_value_invalid"),
        ("3600", "form_param_format_invalid"),
        (True, "form_param_format_invalid"),
        (60.5, "form_param_format_invalid"),
    ],
)
@pytest.mark.parametrize("template", ["", "/api"])
async def test_expires_in_seconds_out_of_range_is_a_422(
    fake: FakeClerk, bapi: httpx.AsyncClient, value: Any, code: str, template: str
) -> None:
    fake.add_jwt_template("api")
    _, session = await new_session(bapi)
    response = await bapi.post(
        f"/v1/sessions/{session['id']}/tokens{template}", json={"expires_in_seconds": value}
    )
    error = assert_clerk_error(response, 422, code)
    assert error["meta"] == {"param_name": "expires_in_seconds"}


async def test_a_revoked_session_mints_no_tokens(fake: FakeClerk, bapi: httpx.AsyncClient) -> None:
    fake.add_jwt_template("api")
    _, session = await new_session(bapi)
    tokens = f"/v1/sessions/{session['id']}/tokens"
    assert (await bapi.post(tokens)).status_code == 200
    await bapi.post(f"/v1/sessions/{session['id']}/revoke")
    assert_clerk_error(await bapi.post(tokens), 404, "resource_not_found")
    assert_clerk_error(await bapi.post(f"{tokens}/api"), 404, "resource_not_found")
    with pytest.raises(FakeClerkError) as refused:
        fake.session_token(session["id"])
    assert (refused.value.status_code, refused.value.code) == (404, "resource_not_found")


def test_python_tokens_take_a_time_and_extra_claims() -> None:
    fake = FakeClerk(clock=lambda: 1_700_000_000.0)
    user = fake.create_user(email_address="ada@example.com")
    session = fake.create_session(user["id"])
    assert session["created_at"] == 1_700_000_000_000
    _, payload = segments(fake.session_token(session["id"]))
    assert payload["iat"] == 1_700_000_000
    _, payload = segments(
        fake.session_token(
            session["id"], now=1_600_000_000, org_role="admin", expires_in_seconds=90
        )
    )
    assert (payload["iat"], payload["exp"]) == (1_600_000_000, 1_600_000_090)
    assert payload["o"] == {"id": "org_test", "rol": "admin"}
    assert payload["sid"] == session["id"]


def test_python_methods_raise_the_errors_the_endpoints_send(fake: FakeClerk) -> None:
    with pytest.raises(FakeClerkError) as missing_user:
        fake.create_session("user_nope")
    assert missing_user.value.status_code == 404
    assert missing_user.value.body()["errors"][0]["code"] == "resource_not_found"
    with pytest.raises(FakeClerkError, match="form_param_format_invalid"):
        fake.create_user(email_address=["nobody"])
    with pytest.raises(FakeClerkError, match="form_param_format_invalid"):
        fake.create_user(email_address=[5])  # type: ignore[list-item]
    with pytest.raises(FakeClerkError):
        fake.get_session("sess_nope")
    user = fake.create_user()
    session = fake.create_session(user["id"])
    with pytest.raises(FakeClerkError) as bad_lifetime:
        fake.session_token(session["id"], expires_in_seconds=10)
    assert bad_lifetime.value.meta == {"param_name": "expires_in_seconds"}
    assert fake.revoke_session(session["id"])["status"] == "revoked"


# -- template tokens -----------------------------------------------------------------------------


async def test_a_template_token_has_the_templates_claims_and_no_sid(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    fake.add_jwt_template(
        "api",
        {
            "aud": "https://api.example",
            "email": "{{user.primary_email_address}}",
            "name": "{{user.first_name}} {{user.last_name}}",
            "full": "{{ user.full_name }}",
            "meta": "{{user.public_metadata}}",
            "nested": {"ids": ["{{user.id}}", 7]},
            "missing": "{{user.username}}",
        },
        lifetime=120,
        allowed_clock_skew=3,
    )
    user, session = await new_session(
        bapi,
        email_address=["ada@example.com"],
        first_name="Ada",
        last_name="Lovelace",
        public_metadata={"tier": 2},
    )
    response = await bapi.post(f"/v1/sessions/{session['id']}/tokens/api")
    assert response.status_code == 200 and response.json()["object"] == "token"
    jwt = response.json()["jwt"]
    header, payload = segments(jwt)
    assert header["cat"] == TEMPLATE_CATEGORY and header["kid"] == fake.kid
    assert not {"sid", "v", "fva"} & payload.keys()
    assert payload["sub"] == user["id"] and payload["iss"] == fake.base_url
    assert payload["exp"] - payload["iat"] == 120
    assert payload["iat"] - payload["nbf"] == 3
    assert payload["aud"] == "https://api.example"
    assert payload["email"] == "ada@example.com"
    assert payload["name"] == payload["full"] == "Ada Lovelace"
    assert payload["meta"] == {"tier": 2}
    assert payload["nested"] == {"ids": [user["id"], 7]}
    assert payload["missing"] is None

    session_settings = fake.settings(jwt_key=fake.public_pem)
    with pytest.raises(ClerkAuthError) as refused:
        await verify_token(jwt, session_settings)
    assert refused.value.reason is ErrorReason.TOKEN_TYPE_MISMATCH
    claims = await verify_token(
        jwt,
        fake.settings(
            jwt_key=fake.public_pem, accept_jwt_templates=True, audience="https://api.example"
        ),
    )
    assert claims.sub == user["id"] and claims.email == "ada@example.com"


async def test_template_lifetime_can_be_overridden_per_request(
    fake: FakeClerk, bapi: httpx.AsyncClient
) -> None:
    fake.add_jwt_template("api", lifetime=300)
    _, session = await new_session(bapi)
    response = await bapi.post(
        f"/v1/sessions/{session['id']}/tokens/api", json={"expires_in_seconds": 45}
    )
    _, payload = segments(response.json()["jwt"])
    assert payload["exp"] - payload["iat"] == 45


async def test_an_unknown_template_is_not_found(bapi: httpx.AsyncClient) -> None:
    _, session = await new_session(bapi)
    response = await bapi.post(f"/v1/sessions/{session['id']}/tokens/nope")
    error = assert_clerk_error(response, 404, "resource_not_found")
    assert "nope" in error["long_message"]


def test_templates_refuse_reserved_claims_unknown_shortcodes_and_bad_lifetimes(
    fake: FakeClerk,
) -> None:
    with pytest.raises(ValueError, match="reserved"):
        fake.add_jwt_template("t", {"sub": "x", "iss": "y"})
    with pytest.raises(ValueError, match="unknown shortcodes"):
        fake.add_jwt_template("t", {"a": ["{{user.password}}"]})
    with pytest.raises(FakeClerkError):
        fake.add_jwt_template("t", lifetime=5)
    template = fake.add_jwt_template("t", {"aud": "x"})
    assert (template.name, template.lifetime, dict(template.claims)) == ("t", 60, {"aud": "x"})


# -- configuration an app needs --------------------------------------------------------------


def test_settings_trust_the_emulator_and_ignore_the_environment(
    fake: FakeClerk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLERK_API_URL", "https://api.elsewhere.example")
    settings = fake.settings(leeway=1)
    assert settings.issuer == settings.api_url == fake.base_url
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == fake.secret_key
    assert settings.jwks_url == f"{fake.base_url}/.well-known/jwks.json"
    assert settings.leeway == 1
    assert fake.secret_key not in repr(settings)


def test_the_publishable_key_encodes_the_in_process_host(fake: FakeClerk) -> None:
    assert fake.publishable_key.startswith("pk_test_")
    assert issuer_from_publishable_key(fake.publishable_key) == fake.base_url
    env = fake.env_vars()
    assert env == {
        "CLERK_ISSUER": fake.base_url,
        "CLERK_API_URL": fake.base_url,
        "CLERK_SECRET_KEY": fake.secret_key,
        "CLERK_PUBLISHABLE_KEY": fake.publishable_key,
        "CLERK_JWKS_REFRESH_COOLDOWN": "0",
    }


def test_no_publishable_key_when_it_cannot_name_the_base_url() -> None:
    for base_url in ("https://fake.example/clerk", "https://localhost:8443"):
        assert "CLERK_PUBLISHABLE_KEY" not in FakeClerk(base_url=base_url).env_vars()


def test_env_vars_configure_get_settings(fake: FakeClerk, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in fake.env_vars().items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.issuer == fake.base_url
    assert settings.key_source_name == "jwks_url"


# -- as a real server on 127.0.0.1 -----------------------------------------------------------


@pytest.fixture
def served() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


def test_serve_runs_on_a_loopback_port_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClerk()
    with fake.serve() as running:
        assert running is fake
        url = httpx.URL(fake.base_url)
        assert url.scheme == "http" and url.host == "127.0.0.1" and url.port
        response = httpx.get(f"{fake.base_url}/.well-known/jwks.json")
        assert response.json() == fake.jwks()
        env = fake.env_vars()
        assert env["CLERK_ISSUER"] == fake.base_url
        assert "CLERK_PUBLISHABLE_KEY" not in env  # Clerk's key format cannot say http://
        with pytest.raises(RuntimeError, match="already"), fake.serve():
            pass
        port = url.port
    assert fake.base_url == "https://fake-clerk.test"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert fake.count("/.well-known/jwks.json") == 1
    assert fake.requests == [("GET", "/.well-known/jwks.json")]


async def test_the_app_passes_the_lifespan_protocol_through(fake: FakeClerk) -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await fake.app(scope, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert fake.requests == []


@pytest.mark.usefixtures("_close_http")
async def test_its_tokens_verify_given_only_clerk_issuer(
    served: FakeClerk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLERK_ISSUER", served.base_url)
    user = served.create_user(email_address="ada@example.com")
    session = served.create_session(user["id"])
    async with httpx.AsyncClient(
        base_url=served.base_url, headers={"Authorization": f"Bearer {served.secret_key}"}
    ) as client:
        jwt = (await client.post(f"/v1/sessions/{session['id']}/tokens")).json()["jwt"]
    claims = await verify_token(jwt)
    assert (claims.sub, claims.sid, claims.iss) == (user["id"], session["id"], served.base_url)
    assert served.count("/.well-known/jwks.json", "GET") == 1


@pytest.mark.usefixtures("_close_http")
async def test_rotation_over_http(served: FakeClerk) -> None:
    settings = served.settings(jwks_refresh_cooldown=0)
    session = served.create_session(served.create_user()["id"])
    old = served.session_token(session["id"])
    assert (await verify_token(old, settings)).sid == session["id"]

    served.rotate_keys(keep_previous=True)
    new = served.session_token(session["id"])
    assert (await verify_token(new, settings)).sid == session["id"]  # unknown kid: refetched
    assert (await verify_token(old, settings)).sid == session["id"]  # still published

    served.rotate_keys()
    newest = served.session_token(session["id"])
    assert (await verify_token(newest, settings)).sid == session["id"]
    with pytest.raises(ClerkAuthError) as refused:
        await verify_token(old, settings)  # its key left the published set
    assert refused.value.reason is ErrorReason.JWK_KID_MISMATCH
    assert served.count("/.well-known/jwks.json") >= 3  # one fetch per new kid at least


@pytest.mark.usefixtures("_close_http")
async def test_a_key_set_outage_is_a_503_for_a_verifier_with_nothing_cached(
    served: FakeClerk,
) -> None:
    session = served.create_session(served.create_user()["id"])
    with served.jwks_outage(), pytest.raises(ClerkAuthError) as unavailable:
        await verify_token(served.session_token(session["id"]), served.settings())
    assert unavailable.value.reason is ErrorReason.JWK_FAILED_TO_LOAD


# -- serve_app -----------------------------------------------------------------------------------


def test_serve_app_reports_a_start_up_that_fails() -> None:
    @asynccontextmanager
    async def broken(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("configuration error")
        yield

    with pytest.raises(RuntimeError, match="did not start"), serve_app(FastAPI(lifespan=broken)):
        pass


def test_serve_app_explains_a_missing_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"clerk-deps\[testing\]"), serve_app(FastAPI()):
        pass
    fake = FakeClerk()
    with pytest.raises(ImportError), fake.serve():
        pass
    assert fake.base_url == "https://fake-clerk.test"


async def test_a_forged_token_for_the_emulator_is_refused_by_signature(fake: FakeClerk) -> None:
    session = fake.create_session(fake.create_user()["id"])
    forged = TestIssuer(issuer=fake.base_url, kid=fake.kid).token(sid=session["id"])
    assert segments(forged)[0]["kid"] == fake.kid
    with pytest.raises(ClerkAuthError) as refused:
        await verify_token(forged, fake.settings(jwt_key=fake.public_pem))
    assert refused.value.reason is ErrorReason.TOKEN_INVALID_SIGNATURE


def test_serve_takes_a_fixed_port_and_refuses_one_in_use() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeClerk().serve(port=port) as fake:
        assert fake.base_url == f"http://127.0.0.1:{port}"
        with pytest.raises(OSError), serve_app(FastAPI(), port=port):
            pass
        assert httpx.get(f"{fake.base_url}/.well-known/jwks.json").status_code == 200
