"""The browser side: a sign-in page that sets the ``__session`` cookie as Clerk's frontend does.

``GET /sign-in?user_id=<id>&redirect_url=<url>`` creates a session for the user, mints its
session token, sets it as the ``__session`` cookie (not ``HttpOnly``, ``SameSite=Lax``, 60 s,
as Clerk's frontend keeps it) and redirects the browser back to ``redirect_url``. The cookie
has no ``Domain``, so it belongs to the emulator's host: serve the app on the same host
(``127.0.0.1``, another port) and the browser sends it there too, as on a real domain.

Only loopback redirect targets are accepted (no open redirect, even in a test tool). No
secret key is needed: this is what a browser does, not a backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .users_sessions import UsersSessions

SESSION_COOKIE = "__session"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class Frontend(UsersSessions):
    """``GET /sign-in``: a browser signs in as a user and gets the ``__session`` cookie."""

    def _routes(self) -> list[Route]:
        return [*super()._routes(), Route("/sign-in", self._http_sign_in, methods=["GET"])]

    def sign_in(self, user_id: str) -> tuple[str, str]:
        """A new session for ``user_id`` and its session token: ``(session_id, token)``."""
        session = self.create_session(user_id)
        return session["id"], self.session_token(session["id"])

    async def _http_sign_in(self, request: Request) -> Response:
        user_id = request.query_params.get("user_id", "")
        redirect_url = request.query_params.get("redirect_url", "")
        problem = _redirect_problem(redirect_url)
        with self._lock:
            known = user_id in self._users
        if problem or not known:
            return _bad_request(problem or f"no user {user_id!r}: create it first")
        _, token = self.sign_in(user_id)
        response = RedirectResponse(redirect_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=60, path="/", samesite="lax", httponly=False
        )
        return response


def _redirect_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK:
        return "redirect_url must be an http(s) URL on 127.0.0.1 or localhost"
    return None


def _bad_request(message: str) -> JSONResponse:
    body: dict[str, Any] = {
        "errors": [{"code": "form_param_invalid", "message": "invalid", "long_message": message}]
    }
    return JSONResponse(body, status_code=400)
