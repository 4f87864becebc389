"""WebSocket authentication over a real server: uvicorn on 127.0.0.1 and the `websockets` client.

A refused handshake carries the reason: where the server supports the ASGI denial response
(uvicorn does), the same status, JSON body and WWW-Authenticate as an HTTP route; on a server
without it (simulated by removing the extension from the scope, uvicorn still serving) the
socket is accepted and closed with 1008 and the reason code. Token transports: header, cookie,
the ``clerk.token.<token>`` subprotocol and the query string (each opt-in as documented).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from clerk_deps import (
    ClerkAuth,
    ClerkAuthError,
    ClerkClaims,
    CurrentUserDep,
    MachineAuth,
    clerk_error_handler,
    get_settings,
    require_clerk_auth,
    require_machine,
    require_org_permission,
    require_org_role,
    require_reverification,
)
from clerk_deps.testing import TestIssuer, override_machine
from clerk_deps.testing.server import serve_app
from clerk_deps.websocket import accept_websocket, require_origin

ISSUER = TestIssuer()
ADMIN = {"org_id": "org_1", "org_role": "admin", "org_permissions": ["org:reports:read"]}
MEMBER = {"org_id": "org_1", "org_role": "member"}
MachineWithScope = Annotated[MachineAuth, Depends(require_machine(scopes=["ws:read"]))]
SessionOrMachine = Annotated[ClerkClaims | MachineAuth, Depends(require_clerk_auth("any"))]


def build_app(**settings: Any) -> FastAPI:
    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: ISSUER.settings(**settings)

    @app.websocket("/ws")
    async def me(websocket: WebSocket, user: CurrentUserDep) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"sub": user.sub, "subprotocol": websocket.scope["subprotocols"]})
        await websocket.close()

    @app.websocket("/ws/admin")
    async def admin(
        websocket: WebSocket, user: Annotated[ClerkClaims, Depends(require_org_role("admin"))]
    ) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"sub": user.sub, "role": user.org_role})
        await websocket.close()

    @app.websocket(
        "/ws/reports", dependencies=[Depends(require_org_permission("org:reports:read"))]
    )
    async def reports(websocket: WebSocket) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"reports": []})
        await websocket.close()

    @app.websocket("/ws/payouts")
    async def payouts(
        websocket: WebSocket,
        user: Annotated[ClerkClaims, Depends(require_reverification("strict"))],
    ) -> None:
        await accept_websocket(websocket)
        await websocket.close()

    @app.websocket("/ws/guarded", dependencies=[Depends(require_origin("https://app.example.com"))])
    async def guarded(websocket: WebSocket, user: CurrentUserDep) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"sub": user.sub})
        await websocket.close()

    @app.websocket("/ws/machine")
    async def machine(websocket: WebSocket, auth: MachineWithScope) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"subject": auth.subject})
        await websocket.close()

    @app.websocket("/ws/any")
    async def any_token(websocket: WebSocket, auth: SessionOrMachine) -> None:
        await accept_websocket(websocket)
        subject = auth.sub if isinstance(auth, ClerkClaims) else auth.subject
        await websocket.send_json({"subject": subject})
        await websocket.close()

    return app


def without_denial_extension(app: ASGIApp) -> ASGIApp:
    """The app as a server without the ASGI WebSocket denial response would run it."""

    async def stripped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            extensions = dict(scope.get("extensions") or {})
            extensions.pop("websocket.http.response", None)
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return stripped


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="uvicorn")
    return caplog


@pytest.fixture
def url(server_log: pytest.LogCaptureFixture) -> Iterator[str]:
    with serve_app(build_app()) as base:
        yield base.replace("http://", "ws://")
    assert "Exception in ASGI application" not in server_log.text


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {ISSUER.token('user_ws', **claims)}"}


def receive(connection: ClientConnection) -> Any:
    return json.loads(connection.recv(timeout=10))


def refused(url: str, **options: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    with pytest.raises(InvalidStatus) as error, connect(url, open_timeout=10, **options):
        pass  # pragma: no cover - the handshake is refused
    response = error.value.response
    headers = {name.lower(): value for name, value in response.headers.raw_items()}
    return response.status_code, json.loads(response.body or b"null"), headers


# -- the denial response: the same answer as an HTTP route ----------------------------------


def test_valid_token_in_the_header_opens_the_socket(url: str) -> None:
    with connect(f"{url}/ws", additional_headers=bearer(), open_timeout=10) as ws:
        assert receive(ws)["sub"] == "user_ws"


@pytest.mark.parametrize(
    ("headers", "reason", "challenge"),
    [
        ({}, "session-token-missing", "Bearer"),
        ({"Authorization": "Bearer not-a-jwt"}, "token-invalid", 'Bearer error="invalid_token"'),
        (
            {"Authorization": f"Bearer {ISSUER.expired_token('user_ws')}"},
            "token-expired",
            'Bearer error="invalid_token"',
        ),
        (
            {"Authorization": f"Bearer {ISSUER.forged_token('user_ws')}"},
            "token-invalid-signature",
            'Bearer error="invalid_token"',
        ),
    ],
)
def test_refused_handshake_gets_status_body_and_challenge(
    url: str, headers: dict[str, str], reason: str, challenge: str
) -> None:
    status, body, response_headers = refused(f"{url}/ws", additional_headers=headers)
    assert status == 401
    assert body["detail"]["reason"] == reason
    assert body["detail"]["message"]
    assert response_headers["www-authenticate"] == challenge
    assert response_headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "claims", "reason"),
    [
        ("/ws/admin", MEMBER, "org-role-required"),
        ("/ws/admin", {}, "org-role-required"),
        ("/ws/reports", MEMBER, "org-permission-required"),
        ("/ws/payouts", {"fva": [0, 60]}, "reverification-required"),
    ],
)
def test_authorization_refusals_are_403_with_the_reason(
    url: str, path: str, claims: dict[str, Any], reason: str
) -> None:
    status, body, headers = refused(f"{url}{path}", additional_headers=bearer(**claims))
    assert (status, body["detail"]["reason"]) == (403, reason)
    assert "www-authenticate" not in headers


@pytest.mark.parametrize("path", ["/ws/admin", "/ws/reports"])
def test_authorization_passes_as_on_http_routes(url: str, path: str) -> None:
    with connect(f"{url}{path}", additional_headers=bearer(**ADMIN), open_timeout=10) as ws:
        assert receive(ws) in ({"sub": "user_ws", "role": "org:admin"}, {"reports": []})


def test_the_app_error_handler_shapes_the_refusal_as_on_http() -> None:
    app = build_app()
    app.add_exception_handler(ClerkAuthError, clerk_error_handler)
    with serve_app(app) as base:
        url = base.replace("http://", "ws://") + "/ws/payouts"
        status, body, _ = refused(url, additional_headers=bearer(fva=[0, 60]))
    assert status == 403
    assert body["clerk_error"]["reason"] == "reverification-error"
    assert body["clerk_error"]["metadata"]["reverification"] == {
        "level": "second_factor",
        "afterMinutes": 10,
    }


# -- a server without the denial response: accept, then close 1008 with the reason ----------


@pytest.fixture
def plain_url(server_log: pytest.LogCaptureFixture) -> Iterator[str]:
    settings = {"websocket_token_protocol": True}
    with serve_app(without_denial_extension(build_app(**settings))) as base:
        yield base.replace("http://", "ws://")
    assert "Exception in ASGI application" not in server_log.text


def closed_with(url: str, **options: Any) -> tuple[int, str, str | None]:
    with connect(url, open_timeout=10, **options) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        chosen = ws.subprotocol
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, chosen


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        ("/ws", dict, "session-token-missing"),
        ("/ws", lambda: {"Authorization": "Bearer not-a-jwt"}, "token-invalid"),
        ("/ws/admin", lambda: bearer(**MEMBER), "org-role-required"),
        ("/ws/reports", lambda: bearer(**MEMBER), "org-permission-required"),
    ],
)
def test_without_denial_support_the_socket_closes_with_1008_and_the_reason(
    plain_url: str, path: str, headers: Callable[[], dict[str, str]], reason: str
) -> None:
    # Tokens are minted here, not at collection: they live 60 s.
    code, close_reason, _ = closed_with(f"{plain_url}{path}", additional_headers=headers())
    assert (code, close_reason) == (1008, reason)


def test_without_denial_support_the_offered_subprotocol_is_echoed(plain_url: str) -> None:
    """A browser drops an answer that names no subprotocol when it offered some, and would
    never see the close reason; the refusal echoes `clerk`, never the token."""
    forged = ISSUER.forged_token("user_ws")
    code, reason, chosen = closed_with(
        f"{plain_url}/ws", subprotocols=["clerk", f"clerk.token.{forged}"]
    )
    assert (code, reason, chosen) == (1008, "token-invalid-signature", "clerk")


def test_without_denial_support_valid_tokens_still_open(plain_url: str) -> None:
    with connect(f"{plain_url}/ws", additional_headers=bearer(), open_timeout=10) as ws:
        assert receive(ws)["sub"] == "user_ws"


# -- token transports ----------------------------------------------------------------------


def test_same_origin_cookie_opens_the_socket(url: str) -> None:
    cookie = {"Cookie": f"__session={ISSUER.token('user_cookie')}"}
    with connect(f"{url}/ws", additional_headers=cookie, open_timeout=10) as ws:
        assert receive(ws)["sub"] == "user_cookie"


@pytest.fixture
def transport_url(server_log: pytest.LogCaptureFixture) -> Iterator[str]:
    app = build_app(websocket_token_protocol=True, websocket_query_param="token")
    with serve_app(app) as base:
        yield base.replace("http://", "ws://")


def test_token_subprotocol_opens_the_socket_and_echoes_clerk_only(transport_url: str) -> None:
    token = ISSUER.token("user_proto")
    with connect(
        f"{transport_url}/ws", subprotocols=["clerk", f"clerk.token.{token}"], open_timeout=10
    ) as ws:
        assert ws.subprotocol == "clerk"
        assert token not in str(ws.response.headers)
        assert receive(ws)["sub"] == "user_proto"


def test_token_subprotocol_is_ignored_unless_turned_on(url: str) -> None:
    token = ISSUER.token("user_proto")
    status, body, _ = refused(f"{url}/ws", subprotocols=["clerk", f"clerk.token.{token}"])
    assert (status, body["detail"]["reason"]) == (401, "session-token-missing")


def test_two_token_subprotocols_are_refused(transport_url: str) -> None:
    tokens = [f"clerk.token.{ISSUER.token(sub)}" for sub in ("user_a", "user_b")]
    status, body, _ = refused(f"{transport_url}/ws", subprotocols=["clerk", *tokens])
    assert (status, body["detail"]["reason"]) == (401, "token-invalid")


def test_query_token_opens_the_socket_when_turned_on(transport_url: str) -> None:
    with connect(f"{transport_url}/ws?token={ISSUER.token('user_q')}", open_timeout=10) as ws:
        assert receive(ws)["sub"] == "user_q"


def test_query_token_is_ignored_by_default(url: str) -> None:
    status, body, _ = refused(f"{url}/ws?token={ISSUER.token('user_q')}")
    assert (status, body["detail"]["reason"]) == (401, "session-token-missing")


def test_repeated_query_token_is_refused(transport_url: str) -> None:
    token = ISSUER.token("user_q")
    status, body, _ = refused(f"{transport_url}/ws?token={token}&token={token}")
    assert (status, body["detail"]["reason"]) == (401, "token-invalid")


def test_header_wins_over_subprotocol_and_query(transport_url: str) -> None:
    protocol = f"clerk.token.{ISSUER.token('user_proto')}"
    with connect(
        f"{transport_url}/ws?token={ISSUER.token('user_q')}",
        subprotocols=["clerk", protocol],
        additional_headers=bearer(),
        open_timeout=10,
    ) as ws:
        assert receive(ws)["sub"] == "user_ws"


def test_explicit_token_wins_over_the_cookie(transport_url: str) -> None:
    cookie = {"Cookie": f"__session={ISSUER.token('user_cookie')}"}
    with connect(
        f"{transport_url}/ws?token={ISSUER.token('user_q')}",
        additional_headers=cookie,
        open_timeout=10,
    ) as ws:
        assert receive(ws)["sub"] == "user_q"


# -- the Origin check against cross-site WebSocket hijacking --------------------------------


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "https://app.example.com.evil.example"]
)
def test_cookie_from_another_site_is_refused(url: str, origin: str) -> None:
    headers = {"Cookie": f"__session={ISSUER.token('user_cookie')}", "Origin": origin}
    status, body, _ = refused(f"{url}/ws/guarded", additional_headers=headers)
    assert (status, body["detail"]["reason"]) == (403, "origin-not-allowed")


def test_allowed_and_same_origins_pass(url: str) -> None:
    host = url.removeprefix("ws://")
    for origin in ("https://app.example.com", "https://APP.example.com/", f"http://{host}", None):
        headers = {"Cookie": f"__session={ISSUER.token('user_cookie')}"}
        with connect(
            f"{url}/ws/guarded", additional_headers=headers, origin=origin, open_timeout=10
        ) as ws:
            assert receive(ws) == {"sub": "user_cookie"}


def test_close_mode_gives_browsers_a_readable_reason() -> None:
    """`CLERK_WEBSOCKET_REFUSAL=close`: even on a server with the denial response, accept and
    close with 1008, because a browser never shows the handshake's HTTP answer to JavaScript."""
    with serve_app(build_app(websocket_refusal="close")) as base:
        url = base.replace("http://", "ws://")
        assert closed_with(f"{url}/ws")[:2] == (1008, "session-token-missing")
        assert closed_with(f"{url}/ws/admin", additional_headers=bearer(**MEMBER))[:2] == (
            1008,
            "org-role-required",
        )
        headers = {"Cookie": f"__session={ISSUER.token('u')}", "Origin": "https://evil.example"}
        assert closed_with(f"{url}/ws/guarded", additional_headers=headers)[:2] == (
            1008,
            "origin-not-allowed",
        )


# Settings in code: a ClerkAuth whose settings turn the subprotocol on and refuse with a close.
CLERK = ClerkAuth(ISSUER.settings(websocket_token_protocol=True, websocket_refusal="close"))
InstanceAdminDep = Annotated[ClerkClaims, Depends(require_org_role("admin", auth=CLERK))]


def test_a_clerk_auth_instance_brings_its_own_websocket_settings() -> None:
    """Transports and the refusal mode follow the ClerkAuth's settings, not the environment,
    for its user dependency and for the guards bound to it."""
    app = FastAPI()

    @app.websocket("/ws/admin")
    async def admin(websocket: WebSocket, user: InstanceAdminDep) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"sub": user.sub})
        await websocket.close()

    with serve_app(app) as base:
        url = base.replace("http://", "ws://") + "/ws/admin"
        admin_token = f"clerk.token.{ISSUER.token('user_ws', **ADMIN)}"
        with connect(url, subprotocols=["clerk", admin_token], open_timeout=10) as ws:
            assert receive(ws) == {"sub": "user_ws"}
        member_token = f"clerk.token.{ISSUER.token('user_ws', **MEMBER)}"
        assert closed_with(url, subprotocols=["clerk", member_token]) == (
            1008,
            "org-role-required",
            "clerk",
        )
        assert closed_with(url)[:2] == (1008, "session-token-missing")


# -- machine-token dependencies refuse a WebSocket as the session dependencies do -----------

MACHINE_REFUSALS = [
    ("/ws/machine", dict, "session-token-missing"),
    ("/ws/machine", bearer, "token-type-mismatch"),
    ("/ws/machine", lambda: {"Authorization": f"Bearer {ISSUER.m2m_token()}"}, "scope-required"),
    ("/ws/any", lambda: {"Authorization": "Bearer not-a-jwt"}, "token-invalid"),
    ("/ws/any", dict, "session-token-missing"),
]


@pytest.fixture
def close_url(server_log: pytest.LogCaptureFixture) -> Iterator[str]:
    with serve_app(build_app(websocket_refusal="close")) as base:
        yield base.replace("http://", "ws://")
    assert "Exception in ASGI application" not in server_log.text


@pytest.mark.parametrize("server", ["close_url", "plain_url"])
@pytest.mark.parametrize(("path", "headers", "reason"), MACHINE_REFUSALS)
def test_machine_refusals_close_the_socket_with_1008_and_the_reason(
    request: pytest.FixtureRequest,
    server: str,
    path: str,
    headers: Callable[[], dict[str, str]],
    reason: str,
) -> None:
    """With `CLERK_WEBSOCKET_REFUSAL=close`, or on a server without the denial response,
    require_machine and require_clerk_auth accept the socket (echoing `clerk`, so a browser
    does not drop it) and close it with 1008 and the reason, as require_clerk_user does."""
    url = request.getfixturevalue(server) + path
    closed = closed_with(url, additional_headers=headers(), subprotocols=["clerk"])
    assert closed == (1008, reason, "clerk")


def test_machine_refusals_keep_the_denial_response_by_default() -> None:
    with serve_app(build_app()) as base:
        url = base.replace("http://", "ws://") + "/ws/machine"
        status, body, headers = refused(url, additional_headers=bearer())
        assert (status, body["detail"]["reason"]) == (401, "token-type-mismatch")
        assert headers["www-authenticate"] == 'Bearer error="invalid_token"'
        m2m = {"Authorization": f"Bearer {ISSUER.m2m_token(scopes=['ws:read'])}"}
        with connect(url, additional_headers=m2m, open_timeout=10) as ws:
            assert receive(ws) == {"subject": "mch_test"}


def test_machine_dependencies_of_a_clerk_auth_follow_its_refusal_mode() -> None:
    """No get_settings override: the refusal mode is the ClerkAuth's, for a refusal after the
    token was read and for one before (two Authorization headers)."""
    app = FastAPI()

    @app.websocket("/ws/machine")
    async def machine(
        websocket: WebSocket,
        auth: Annotated[MachineAuth, Depends(require_machine(scopes=["ws:read"], auth=CLERK))],
    ) -> None:
        await accept_websocket(websocket)  # pragma: no cover - every handshake is refused
        await websocket.close()  # pragma: no cover

    m2m = f"Bearer {ISSUER.m2m_token()}"
    with serve_app(app) as base:
        url = base.replace("http://", "ws://") + "/ws/machine"
        assert closed_with(url, additional_headers={"Authorization": m2m})[:2] == (
            1008,
            "scope-required",
        )
        twice = [("Authorization", m2m), ("Authorization", m2m)]
        assert closed_with(url, additional_headers=twice)[:2] == (1008, "token-invalid")


def test_override_machine_refuses_a_websocket_as_the_real_dependency_does() -> None:
    app = build_app(websocket_refusal="close")
    with serve_app(app) as base, override_machine(app, token_type="m2m_token", scopes=[]):
        url = base.replace("http://", "ws://") + "/ws/machine"
        assert closed_with(url)[:2] == (1008, "scope-required")
    with override_machine(app, token_type="m2m_token", scopes=["ws:read"]), serve_app(app) as base:
        url = base.replace("http://", "ws://") + "/ws/machine"
        with connect(url, open_timeout=10) as ws:
            assert receive(ws) == {"subject": "mch_test"}
