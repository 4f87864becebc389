"""The demo's browser page and the API it calls, same-origin and cross-origin.

``build_app`` returns one FastAPI app; the demo serves it twice on 127.0.0.1: once as the page's
own origin (the page, ``GET /me`` with the ``__session`` cookie, WebSockets with the cookie)
and once on another port, as a cross-origin API (``Authorization: Bearer``, CORS, and
WebSockets with the token in a subprotocol). The page signs in through FakeClerk, which sets
the ``__session`` cookie as Clerk's frontend would, then shows every answer it gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, PlainTextResponse

from clerk_deps import (
    ClerkClaims,
    ClerkSettings,
    CurrentUserDep,
    accept_websocket,
    get_settings,
    require_org_role,
    require_origin,
)

PAGE = Path(__file__).with_name("browser_page.html")
SCRIPT = Path(__file__).with_name("browser_page.js")


def build_app(
    settings: ClerkSettings, *, page_origin: str, api_url: str, sign_in_url: str, user_id: str
) -> FastAPI:
    """``settings`` trust FakeClerk; ``page_origin`` is where the page is served from,
    ``api_url`` the same app on another origin, ``user_id`` the user the page signs in as."""
    app = FastAPI(title="clerk-deps browser demo")
    app.dependency_overrides[get_settings] = lambda: settings
    config = {"apiUrl": api_url, "signInUrl": sign_in_url, "userId": user_id}

    # --8<-- [start:cors]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[page_origin],  # exact origins; never "*" for an authenticated API
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    # --8<-- [end:cors]

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.read_text()

    @app.get("/page.js", response_class=PlainTextResponse)
    async def script() -> PlainTextResponse:
        return PlainTextResponse(SCRIPT.read_text(), media_type="text/javascript")

    @app.get("/config.json")
    async def page_config() -> dict[str, str]:
        return config

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, Any]:
        return {"user_id": user.sub, "session_id": user.sid}

    # --8<-- [start:websocket]
    same_site = require_origin(page_origin)

    @app.websocket("/ws", dependencies=[Depends(same_site)])
    async def hello(websocket: WebSocket, user: CurrentUserDep) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"hello": user.sub})
        await websocket.close()

    @app.websocket("/ws/admin", dependencies=[Depends(same_site)])
    async def admin(
        websocket: WebSocket, user: Annotated[ClerkClaims, Depends(require_org_role("admin"))]
    ) -> None:
        await accept_websocket(websocket)
        await websocket.send_json({"admin": user.sub})
        await websocket.close()

    # --8<-- [end:websocket]

    return app
