"""FastAPI integration: overrides, OpenAPI, WebSocket, optional users, hygiene."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    CurrentUserDep,
    CurrentUserWithEmailDep,
    ErrorReason,
    OptionalUserDep,
    clerk_error_handler,
    get_settings,
    require_clerk_user,
    verify_token,
)
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.issuer import shared_private_key

ISSUER = TestIssuer()
OTHER = TestIssuer(
    issuer="https://other.example", kid="ins_other", private_key=shared_private_key(2)
)


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/me")
    async def me(user: CurrentUserDep, request: Request) -> dict[str, Any]:
        stored = getattr(request.state, "clerk_user", None)
        return {"sub": user.sub, "email": user.email, "on_state": stored is user}

    @app.get("/maybe")
    async def maybe(user: OptionalUserDep) -> dict[str, Any]:
        return {"sub": user.sub if user else None}

    router = APIRouter(prefix="/admin", dependencies=[Depends(require_clerk_user)])

    @router.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        return {"by": request.state.clerk_user.sub}

    app.include_router(router)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: CurrentUserDep) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": user.sub})
        await websocket.close()

    return app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app() -> FastAPI:
    app = build_app()
    app.dependency_overrides[get_settings] = ISSUER.settings
    return app


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def test_router_level_dependency(client: TestClient) -> None:
    assert client.get("/admin/stats", headers=auth(ISSUER.token("user_r"))).json() == {
        "by": "user_r"
    }
    assert client.get("/admin/stats").status_code == 401


def test_override_require_clerk_user_needs_no_token(app: FastAPI) -> None:
    fake = ClerkClaims(sub="user_override", iat=1, exp=2, email="o@example.com")
    app.dependency_overrides[require_clerk_user] = lambda: fake
    client = TestClient(app)
    body = client.get("/me").json()
    assert body["sub"] == "user_override" and body["email"] == "o@example.com"


def test_claims_stored_on_request_state(client: TestClient) -> None:
    assert client.get("/me", headers=auth(ISSUER.token())).json()["on_state"] is True


def test_override_get_settings_reconfigures_verification(app: FastAPI) -> None:
    client = TestClient(app)
    token = OTHER.token("user_other")
    assert client.get("/me", headers=auth(token)).json()["detail"]["reason"] == (
        "token-invalid-signature"
    )
    app.dependency_overrides[get_settings] = OTHER.settings
    assert client.get("/me", headers=auth(token)).json()["sub"] == "user_other"


def test_not_configured_is_a_500_naming_the_variables(client: TestClient, app: FastAPI) -> None:
    app.dependency_overrides[get_settings] = lambda: ClerkSettings(_env_file=None)
    response = client.get("/me", headers=auth(ISSUER.token()))
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert detail["reason"] == "auth-not-configured"
    for variable in ("CLERK_ISSUER", "CLERK_JWT_KEY", "CLERK_SECRET_KEY"):
        assert variable in detail["message"]
    # Optional routes: no token at all is anonymous (contract), a presented token is judged.
    assert client.get("/maybe").json() == {"sub": None}
    assert client.get("/maybe", headers=auth(ISSUER.token())).status_code == 500


def test_invalid_environment_is_a_500_not_a_stack_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_ISSUER", "http://not-https.example")
    client = TestClient(build_app(), raise_server_exceptions=False)
    response = client.get("/me", headers=auth(ISSUER.token()))
    assert response.status_code == 500
    assert response.json()["detail"]["reason"] == "auth-not-configured"
    assert "CLERK_ISSUER" in response.json()["detail"]["message"]


def test_optional_user(client: TestClient) -> None:
    assert client.get("/maybe").json() == {"sub": None}
    assert client.get("/maybe", headers=auth(ISSUER.token("user_o"))).json() == {"sub": "user_o"}
    bad = client.get("/maybe", headers=auth(ISSUER.forged_token()))
    assert bad.status_code == 401
    assert bad.json()["detail"]["reason"] == "token-invalid-signature"
    expired = client.get("/maybe", headers=auth(ISSUER.expired_token()))
    assert expired.json()["detail"]["reason"] == "token-expired"


def test_openapi_bearer_scheme_on_protected_routes_only(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert len(schemes) == 1
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    paths = document["paths"]
    assert paths["/me"]["get"]["security"] == [{name: []}]
    assert paths["/maybe"]["get"]["security"] == [{name: []}]
    assert paths["/admin/stats"]["get"]["security"] == [{name: []}]
    assert "security" not in paths["/public"]["get"]


def test_websocket_accepts_valid_token(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=auth(ISSUER.token("user_ws"))) as websocket:
        assert websocket.receive_json() == {"sub": "user_ws"}


def test_websocket_accepts_cookie(client: TestClient) -> None:
    client.cookies.set("__session", ISSUER.token("user_cookie"))
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"sub": "user_cookie"}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "session-token-missing"), (auth("garbage"), "token-invalid")],
)
def test_websocket_refusal_is_the_http_answer(
    client: TestClient, headers: dict[str, str], reason: str
) -> None:
    """TestClient supports the ASGI denial response: the handshake gets the HTTP 401."""
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert refused.value.status_code == 401
    assert refused.value.json()["detail"]["reason"] == reason
    assert refused.value.headers["www-authenticate"].startswith("Bearer")


def test_error_handler_keeps_the_detail_body(app: FastAPI) -> None:
    app.add_exception_handler(ClerkAuthError, clerk_error_handler)
    response = TestClient(app).get("/me")
    assert response.status_code == 401
    assert response.json()["detail"]["reason"] == "session-token-missing"
    assert response.headers["www-authenticate"] == "Bearer"


def test_clerk_auth_error_shape() -> None:
    error = ClerkAuthError(ErrorReason.JWK_FAILED_TO_LOAD, "down", retry_after=7)
    assert error.status_code == 503 and error.headers == {"Retry-After": "7"}
    assert error.detail == {"reason": "jwk-failed-to-load", "message": "down"}
    assert str(error) == "503 jwk-failed-to-load: down"
    assert "down" not in repr(error) and "jwk-failed-to-load" in repr(error)
    assert str(ErrorReason.TOKEN_EXPIRED) == "token-expired"
    assert ClerkAuthError(ErrorReason.PLAN_REQUIRED, "x").headers is None


async def test_verify_token_without_fastapi_and_with_a_clock() -> None:
    settings = ISSUER.settings(leeway=0)
    token = ISSUER.token("user_core", now=1_000_000)
    claims = await verify_token(token, settings, clock=lambda: 1_000_059)
    assert claims.sub == "user_core" and claims.exp == 1_000_060
    with pytest.raises(ClerkAuthError) as expired:
        await verify_token(token, settings, clock=lambda: 1_000_060)  # exp + leeway <= now
    assert expired.value.reason is ErrorReason.TOKEN_EXPIRED
    assert "expired 0 s ago" in expired.value.message
    with pytest.raises(ClerkAuthError) as early:
        await verify_token(token, settings, clock=lambda: 999_980)  # nbf = iat - 10
    assert early.value.reason is ErrorReason.TOKEN_NOT_ACTIVE_YET


async def test_verify_token_defaults_to_get_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_JWT_KEY", ISSUER.public_pem)
    monkeypatch.setenv("CLERK_ISSUER", ISSUER.issuer)
    assert (await verify_token(ISSUER.token("user_env"))).sub == "user_env"


def test_nothing_secret_in_logs_bodies_or_reprs(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_test_never_show_this_secret"
    app.dependency_overrides[get_settings] = lambda: ISSUER.settings(secret_key=secret)
    client = TestClient(app)
    tokens = [
        ISSUER.token(),
        ISSUER.forged_token(),
        ISSUER.expired_token(),
        ISSUER.token(iss="https://evil.example"),
        ISSUER.token(headers={"alg": "RS512"}),
        "Zm9v.YmFy.YmF6",
    ]
    caplog.set_level(logging.DEBUG)
    bodies = [client.get("/me", headers=auth(token)).text for token in tokens]
    settings = ISSUER.settings(secret_key=secret)
    haystack = "\n".join(
        [*bodies, caplog.text, repr(settings), str(settings), repr(ISSUER)]
        + [record.getMessage() for record in caplog.records]
    )
    for token in tokens:
        assert token not in haystack
        for segment in token.split(".")[1:]:
            assert segment not in haystack
    assert secret not in haystack
    assert "BEGIN PUBLIC KEY" not in haystack


def test_forged_token_reveals_nothing_about_its_claims(client: TestClient) -> None:
    forged = ISSUER.forged_token(iss="https://attacker.example", exp=1)
    detail = client.get("/me", headers=auth(forged)).json()["detail"]
    assert detail["reason"] == "token-invalid-signature"
    assert "attacker" not in detail["message"]
    assert "expired" not in detail["message"]


def test_async_get_settings_override_works_in_routes_and_lifespan() -> None:
    from clerk_deps import clerk_lifespan

    app = FastAPI(lifespan=clerk_lifespan)

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, str]:
        return {"sub": user.sub}

    async def settings() -> ClerkSettings:
        return ISSUER.settings()

    app.dependency_overrides[get_settings] = settings
    with TestClient(app) as client:  # the lifespan awaits the override too
        assert client.get("/me", headers=auth(ISSUER.token("user_async"))).json() == {
            "sub": "user_async"
        }


def test_router_dependency_sees_the_override_of_the_app_it_is_mounted_in() -> None:
    inner = build_app()
    inner.dependency_overrides[get_settings] = OTHER.settings
    outer = FastAPI()
    outer.mount("/v2", inner)
    client = TestClient(outer)
    response = client.get("/v2/me", headers=auth(OTHER.token("user_mounted")))
    assert response.json()["sub"] == "user_mounted"


def test_get_settings_override_with_parameters_is_refused_clearly(app: FastAPI) -> None:
    def needs_request(request: Request) -> ClerkSettings:
        return ISSUER.settings()  # pragma: no cover - never called

    app.dependency_overrides[get_settings] = needs_request
    with pytest.raises(TypeError, match="without parameters"):
        TestClient(app).get("/me", headers=auth(ISSUER.token()))


def test_email_dependency_reads_no_settings_when_the_user_has_an_email(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLERK_ISSUER", "http://not-local.example")  # invalid if ever read
    app = FastAPI()

    @app.get("/email")
    async def email(user: CurrentUserWithEmailDep) -> dict[str, Any]:
        return {"email": user.email}

    claims = ClerkClaims(sub="user_o", iat=1, exp=2, email="o@example.com")
    app.dependency_overrides[require_clerk_user] = lambda: claims
    assert TestClient(app).get("/email").json() == {"email": "o@example.com"}
