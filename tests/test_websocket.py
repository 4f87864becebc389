"""clerk_deps.websocket in process: settings, subprotocol echo, the Origin guard's edges.

The behaviour over a real server (denial response, 1008 close, transports) is tested in
tests/integration/test_websocket.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.testclient import WebSocketDenialResponse

from clerk_deps import ClerkSettings, accept_websocket, get_settings, require_origin


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"websocket_query_param": "to ken"}, "CLERK_WEBSOCKET_QUERY_PARAM"),
        ({"websocket_query_param": "a&b=c"}, "CLERK_WEBSOCKET_QUERY_PARAM"),
        ({"websocket_refusal": "deny"}, "CLERK_WEBSOCKET_REFUSAL"),
        ({"websocket_refusal": 1008}, "CLERK_WEBSOCKET_REFUSAL"),
    ],
)
def test_bad_websocket_settings_name_their_variable(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        ClerkSettings(**values)


def test_websocket_settings_defaults_and_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ClerkSettings()
    assert defaults.websocket_token_protocol is False
    assert defaults.websocket_query_param is None
    assert defaults.websocket_refusal == "response"
    monkeypatch.setenv("CLERK_WEBSOCKET_TOKEN_PROTOCOL", "true")
    monkeypatch.setenv("CLERK_WEBSOCKET_QUERY_PARAM", " token ")
    monkeypatch.setenv("CLERK_WEBSOCKET_REFUSAL", "Close")
    configured = ClerkSettings()
    assert configured.websocket_token_protocol is True
    assert configured.websocket_query_param == "token"
    assert configured.websocket_refusal == "close"
    assert ClerkSettings(websocket_query_param="  ").websocket_query_param is None


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, protocol: str | None = None) -> None:
        try:
            await accept_websocket(websocket, protocol)
        except ValueError as error:
            await websocket.accept()
            await websocket.send_json({"error": str(error)})
            await websocket.close()
            return
        await websocket.send_json({"chosen": websocket.scope.get("subprotocols")})
        await websocket.close()

    return app


@pytest.mark.parametrize(
    ("offered", "protocol", "chosen"),
    [
        (["clerk", "clerk.token.abc"], None, "clerk"),
        (["graphql-ws", "clerk.token.abc"], "graphql-ws", "graphql-ws"),
        ([], None, None),
        (["other"], None, None),
    ],
)
def test_accept_websocket_echoes_an_offered_protocol_never_the_token(
    offered: list[str], protocol: str | None, chosen: str | None
) -> None:
    url = "/ws" + (f"?protocol={protocol}" if protocol else "")
    with TestClient(echo_app()).websocket_connect(url, subprotocols=offered) as websocket:
        websocket.receive_json()
        assert websocket.accepted_subprotocol == chosen


@pytest.mark.parametrize("protocol", ["clerk.token.abc", "not-offered"])
def test_accept_websocket_refuses_to_echo_the_token_or_an_unoffered_protocol(
    protocol: str,
) -> None:
    client = TestClient(echo_app())
    url = f"/ws?protocol={protocol}"
    with client.websocket_connect(url, subprotocols=["clerk", "clerk.token.abc"]) as websocket:
        assert "was not offered" in websocket.receive_json()["error"]


def test_require_origin_needs_real_origins() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        require_origin("")
    with pytest.raises(ValueError, match="non-empty"):
        require_origin(None)  # type: ignore[arg-type]


def origin_app() -> FastAPI:
    app = FastAPI()

    @app.get("/data", dependencies=[Depends(require_origin("https://app.example.com"))])
    async def data() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/ws", dependencies=[Depends(require_origin())])
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    return app


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 200),
        ("https://app.example.com", 200),
        ("https://app.example.com/", 200),
        ("http://testserver", 200),  # same origin: Origin names the Host
        ("https://evil.example", 403),
        ("null", 403),
        ("http://[::1", 403),  # unparseable
        ("x" * 500, 403),
    ],
)
def test_require_origin_on_http_routes(origin: str | None, status: int) -> None:
    headers = {"Origin": origin} if origin else {}
    response = TestClient(origin_app()).get("/data", headers=headers)
    assert response.status_code == status
    if status == 403:
        detail = response.json()["detail"]
        assert detail["reason"] == "origin-not-allowed"
        assert len(detail["message"]) < 300


def test_origin_refusal_without_usable_settings_is_still_the_http_answer() -> None:
    """A route with only the Origin guard, and a broken settings override: the refusal
    still reaches the client as the denial response (the settings error belongs to the
    dependencies that need settings)."""
    app = origin_app()
    app.dependency_overrides[get_settings] = lambda: "not settings"
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        TestClient(app).websocket_connect("/ws", headers={"Origin": "https://evil.example"}),
    ):
        pass  # pragma: no cover - refused
    assert refused.value.status_code == 403
    assert refused.value.json()["detail"]["reason"] == "origin-not-allowed"


@pytest.mark.parametrize(
    ("scope", "refused_as"),
    [
        ({"type": "http"}, "error"),
        ({"type": "websocket", "extensions": {"websocket.http.response": {}}}, "error"),
        ({"type": "websocket", "extensions": {}}, "close"),
        ({"type": "websocket"}, "close"),
    ],
)
def test_error_for_connection_follows_the_server(scope: dict[str, Any], refused_as: str) -> None:
    """The synchronous form, for code that cannot await refusal_for."""
    from starlette.exceptions import WebSocketException
    from starlette.requests import HTTPConnection

    from clerk_deps.connection import error_for_connection
    from clerk_deps.errors import ClerkAuthError, ErrorReason

    error = ClerkAuthError(ErrorReason.TOKEN_EXPIRED, "expired")
    result = error_for_connection(HTTPConnection({**scope, "headers": []}), error)
    if refused_as == "error":
        assert result is error
    else:
        assert isinstance(result, WebSocketException)
        assert (result.code, result.reason) == (1008, "token-expired")
