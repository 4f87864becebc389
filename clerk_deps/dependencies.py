"""FastAPI glue: find the token on the connection, verify it, hand the claims to the route.

``require_clerk_user`` works on HTTP and WebSocket routes alike (it takes an
``HTTPConnection``). Its settings come from ``get_settings``, or from
``app.dependency_overrides[get_settings]`` when the app sets one, and overriding
``require_clerk_user`` itself replaces authentication in tests.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, WebSocketException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool
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
    "SettingsDep",
    "clerk_lifespan",
    "error_for_connection",
    "extract_token",
    "optional_clerk_user",
    "require_clerk_user",
    "resolve_settings",
]


async def resolve_settings(conn: HTTPConnection) -> ClerkSettings:
    """The settings for this connection: ``app.dependency_overrides[get_settings]`` when the
    app set one (a function with no parameters, plain or ``async``), else :func:`get_settings`.

    Resolved here rather than by FastAPI: FastAPI runs a plain-function dependency such as
    ``get_settings`` in its thread pool, which cost a protected route about 300 us a request.
    """
    app = conn.scope.get("app")
    overrides = getattr(app, "dependency_overrides", None)
    return await _call_settings_factory(overrides.get(get_settings) if overrides else None)


async def _call_settings_factory(factory: Callable[[], Any] | None) -> ClerkSettings:
    if factory is not None and not _takes_no_arguments(factory):
        raise TypeError(
            "app.dependency_overrides[get_settings] must be a function without parameters "
            "(plain or async) returning ClerkSettings, e.g. lambda: ClerkSettings(...)"
        )
    if factory is not None:
        settings = factory()
    elif get_settings.cache_info().currsize:
        settings = get_settings()
    else:  # the first call reads .env files: keep that disk I/O off the event loop
        settings = await run_in_threadpool(get_settings)
    if inspect.isawaitable(settings):
        settings = await settings
    if not isinstance(settings, ClerkSettings):
        raise TypeError(
            f"the get_settings override returned {type(settings).__name__}, not ClerkSettings"
        )
    return settings


@lru_cache(maxsize=64)
def _takes_no_arguments(factory: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return True
    required = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return (
        not required
        and not inspect.isgeneratorfunction(factory)
        and not (inspect.isasyncgenfunction(factory))
    )


SettingsDep = Annotated[ClerkSettings, Depends(resolve_settings)]
"""The connection's :class:`ClerkSettings` in a route or dependency signature."""


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


def error_for_connection(conn: HTTPConnection, error: ClerkAuthError) -> Exception:
    """``error`` as ``conn`` must receive it: a WebSocket is closed with code 1008 and the
    reason code (an HTTP error body cannot reach it); an HTTP request gets ``error`` itself."""
    if conn.scope["type"] == "websocket":
        return WebSocketException(WS_1008_POLICY_VIOLATION, error.reason.value)
    return error


class _ClerkSession(SecurityBase):
    """One security dependency that reads the token, verifies it, and stores the claims.

    Being a security scheme, it puts an HTTP bearer scheme (bearerFormat JWT) into the OpenAPI
    document of every route that uses it, so the /docs "Authorize" button works. Doing all the
    work in one dependency keeps FastAPI's per-dependency overhead off the request path.
    """

    def __init__(self, name: str, doc: str | None) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description="A Clerk session token: `await getToken()` in the browser, or the "
            "`__session` cookie on same-origin requests.",
        )
        self.scheme_name = "ClerkSession"
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc

    def __repr__(self) -> str:
        return self.__name__

    async def _claims(self, conn: HTTPConnection, *, optional: bool) -> ClerkClaims | None:
        try:
            settings = await resolve_settings(conn)
            token = extract_token(conn, settings.session_cookie)
            if token is None and optional:
                return None
            if token is None:
                # Misconfiguration first, so it is never mistaken for a client's 401
                # (verify_token makes the same check first when there is a token).
                key_source_for(settings)
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


class _RequiredClerkUser(_ClerkSession):
    async def __call__(self, conn: HTTPConnection) -> ClerkClaims:
        claims = await self._claims(conn, optional=False)
        assert claims is not None
        return claims


class _OptionalClerkUser(_ClerkSession):
    async def __call__(self, conn: HTTPConnection) -> ClerkClaims | None:
        return await self._claims(conn, optional=True)


require_clerk_user = _RequiredClerkUser(
    "require_clerk_user",
    """FastAPI dependency: the verified claims of the connection's Clerk session, or a 401 with
    a reason code. Works on HTTP and WebSocket routes (a failing WebSocket is closed with code
    1008 and the reason code); also stores the claims on ``request.state.clerk_user``.
    ``app.dependency_overrides[get_settings]`` reconfigures it; overriding it replaces
    authentication (and every authorization dependency built on it) in tests.""",
)

optional_clerk_user = _OptionalClerkUser(
    "optional_clerk_user",
    """Like ``require_clerk_user``, but ``None`` when the request carries no token at all. A
    token that is present and bad is still rejected: an invalid token is never "anonymous".""",
)


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
    await warm_up(await _call_settings_factory(app.dependency_overrides.get(get_settings)))
    try:
        yield
    finally:
        await close_shared_client()
