"""FastAPI glue: find the token on the connection, verify it, hand the claims to the route.

``require_clerk_user`` works on HTTP and WebSocket routes alike (it takes an
``HTTPConnection``). Its settings come from ``Depends(get_settings)``, so
``app.dependency_overrides[get_settings]`` reconfigures it, and overriding
``require_clerk_user`` itself replaces authentication in tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, WebSocketException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION

from ._http import close_shared_client
from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .keys import key_source_for, warm_up
from .settings import ClerkSettings, get_settings
from .tokens import verify_token

__all__ = [
    "CurrentUserDep",
    "OptionalUserDep",
    "clerk_bearer",
    "clerk_lifespan",
    "extract_token",
    "optional_clerk_user",
    "require_clerk_user",
]


SettingsDep = Annotated[ClerkSettings, Depends(get_settings)]


class ClerkBearer(SecurityBase):
    """Reads the session token: ``Authorization: Bearer`` first, else the session cookie.

    As a security dependency it also puts an HTTP bearer scheme (bearerFormat JWT) into the
    OpenAPI document of every route that uses it, so the /docs "Authorize" button works.
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description="A Clerk session token: `await getToken()` in the browser, or the "
            "`__session` cookie on same-origin requests.",
        )
        self.scheme_name = "ClerkSession"

    async def __call__(self, conn: HTTPConnection, settings: SettingsDep) -> str | None:
        """The raw token, or ``None`` when the connection carries none."""
        try:
            return extract_token(conn, settings.session_cookie)
        except ClerkAuthError as error:
            raise error_for_connection(conn, error) from None


def extract_token(conn: HTTPConnection, cookie_name: str = "__session") -> str | None:
    """The Bearer credentials (scheme in any case), else the session cookie, else ``None``.

    A Bearer header is authoritative: when present, the cookie is not consulted, even if the
    header's credentials are empty. More than one ``Authorization`` header is refused
    (``token-invalid``): which one a proxy or framework would pick is not well defined.
    """
    headers = conn.headers.getlist("authorization")
    if len(headers) > 1:
        raise ClerkAuthError(
            ErrorReason.TOKEN_INVALID,
            f"the request has {len(headers)} Authorization headers; send exactly one",
        )
    if headers:
        scheme, _, credentials = headers[0].strip().partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() or None
    return conn.cookies.get(cookie_name) or None


clerk_bearer = ClerkBearer()
TokenDep = Annotated[str | None, Depends(clerk_bearer)]


async def _authenticate(
    conn: HTTPConnection, token: str | None, settings: ClerkSettings
) -> ClerkClaims:
    try:
        # Misconfiguration is reported first, so it is never mistaken for a client's 401.
        key_source_for(settings)
        if token is None:
            raise ClerkAuthError(
                ErrorReason.SESSION_TOKEN_MISSING,
                "no session token: send 'Authorization: Bearer <token>' (from Clerk's "
                f"getToken()) or the {settings.session_cookie} cookie",
            )
        claims = await verify_token(token, settings)
    except ClerkAuthError as error:
        raise error_for_connection(conn, error) from None
    conn.state.clerk_user = claims
    return claims


def error_for_connection(conn: HTTPConnection, error: ClerkAuthError) -> Exception:
    """``error`` as ``conn`` must receive it: a WebSocket is closed with code 1008 and the
    reason code (an HTTP error body cannot reach it); an HTTP request gets ``error`` itself."""
    if conn.scope["type"] == "websocket":
        return WebSocketException(WS_1008_POLICY_VIOLATION, error.reason.value)
    return error


async def require_clerk_user(
    conn: HTTPConnection, settings: SettingsDep, token: TokenDep
) -> ClerkClaims:
    """The verified claims of the connection's Clerk session, or a 401 with a reason code.

    Also stored on ``request.state.clerk_user``. A WebSocket that fails is closed with code
    1008 and the reason code.
    """
    return await _authenticate(conn, token, settings)


async def optional_clerk_user(
    conn: HTTPConnection, settings: SettingsDep, token: TokenDep
) -> ClerkClaims | None:
    """Like :func:`require_clerk_user`, but ``None`` when the request carries no token at all.

    A token that is present and bad is still rejected: an invalid token is never "anonymous".
    """
    if token is None:
        return None
    return await _authenticate(conn, token, settings)


CurrentUserDep = Annotated[ClerkClaims, Depends(require_clerk_user)]
"""``user: CurrentUserDep`` in a route signature: the verified claims, or 401."""

OptionalUserDep = Annotated[ClerkClaims | None, Depends(optional_clerk_user)]
"""``user: OptionalUserDep``: the verified claims, ``None`` without a token, 401 for a bad one."""


@asynccontextmanager
async def clerk_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """``FastAPI(lifespan=clerk_lifespan)``: load signing keys before the first request.

    Uses ``app.dependency_overrides[get_settings]`` when set. A configuration error stops
    start-up with its message; an unreachable key server only logs a warning. The shared HTTP
    client is closed on shutdown.
    """
    settings_factory = app.dependency_overrides.get(get_settings, get_settings)
    await warm_up(settings_factory())
    try:
        yield
    finally:
        await close_shared_client()
