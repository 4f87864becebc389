# testing_websocket.py
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from clerk_deps import CurrentUserDep, accept_websocket, clerk_lifespan, get_settings
from clerk_deps.testing import TestIssuer

app = FastAPI(lifespan=clerk_lifespan)
app.add_middleware(
    CORSMiddleware,
    allow_origins=["https://app.example.com"],
    allow_headers=["Authorization"],
)


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str]:
    return {"user_id": user.sub}


@app.websocket("/ws")
async def hello(websocket: WebSocket, user: CurrentUserDep) -> None:
    await accept_websocket(websocket)
    await websocket.send_json({"hello": user.sub})
    await websocket.close()


@pytest.fixture
def client(clerk_issuer: TestIssuer) -> Iterator[TestClient]:
    app.dependency_overrides[get_settings] = clerk_issuer.settings
    with TestClient(app) as client:  # `with` runs clerk_lifespan: keys load before the tests
        yield client
    app.dependency_overrides.clear()


def test_websocket_with_the_session_cookie(client: TestClient, clerk_token: str) -> None:
    client.cookies.set("__session", clerk_token)  # what a same-origin browser sends
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"hello": "user_test"}


def test_websocket_refusal_carries_the_reason(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.status_code == 401
    assert refused.value.json()["detail"]["reason"] == "session-token-missing"


def test_a_cross_origin_browser_call(client: TestClient, clerk_token: str) -> None:
    origin = {"Origin": "https://app.example.com"}
    preflight = client.options(
        "/me",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    response = client.get("/me", headers={**origin, "Authorization": f"Bearer {clerk_token}"})
    assert response.json() == {"user_id": "user_test"}
