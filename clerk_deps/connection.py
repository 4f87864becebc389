"""What the library reads from an HTTP or WebSocket connection, and how it refuses one.

* :func:`extract_token`: the session token of a connection (``Authorization`` header, else the
  session cookie), refusing requests that carry it ambiguously;
* :func:`resolve_settings`: the connection's settings (``app.dependency_overrides[get_settings]``
  when the app set one, else :func:`get_settings`);
* :func:`error_for_connection`: a :class:`ClerkAuthError` in the form the connection can receive.

No FastAPI dependency lives here; ``ClerkAuth`` (``auth.py``) builds its dependencies on these.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, WebSocketException
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION

from .errors import ClerkAuthError, ErrorReason
from .settings import ClerkSettings, get_settings

__all__ = [
    "SettingsDep",
    "error_for_connection",
    "extract_token",
    "resolve_settings",
    "session_cookie_names",
]


# -- settings ----------------------------------------------------------------------------


async def resolve_settings(conn: HTTPConnection) -> ClerkSettings:
    """The settings for this connection: ``app.dependency_overrides[get_settings]`` when the
    app set one (a function with no parameters, plain or ``async``), else :func:`get_settings`.

    Resolved here rather than by FastAPI: FastAPI runs a plain-function dependency such as
    ``get_settings`` in its thread pool, which cost a protected route about 300 us a request.
    """
    overrides = getattr(conn.scope.get("app"), "dependency_overrides", None)
    factory = overrides.get(get_settings) if overrides else None
    if factory is None and get_settings.cache_info().currsize:
        return get_settings()
    return await call_settings_factory(factory)


async def call_settings_factory(factory: Callable[[], Any] | None) -> ClerkSettings:
    """Settings from an override of ``get_settings`` (``None``: :func:`get_settings` itself)."""
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


# -- the token ---------------------------------------------------------------------------

# A compact JWS: three base64url segments (the signature may be empty; verification refuses it).
_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def session_cookie_names(cookie_name: str, publishable_key: str | None) -> tuple[str, ...]:
    """The cookies that may hold an instance's session token, in the order they are read.

    With a publishable key, Clerk also sets a cookie suffixed for the instance,
    ``<cookie_name>_<first 8 characters of base64url(SHA-1(publishable key))>``, so that
    several Clerk apps on one domain do not overwrite each other's session; it is read first.
    """
    if not publishable_key:
        return (cookie_name,)
    digest = hashlib.sha1(publishable_key.encode()).digest()  # noqa: S324 - a name, not security
    suffix = base64.urlsafe_b64encode(digest).decode("ascii")[:8]
    return (f"{cookie_name}_{suffix}", cookie_name)


def extract_token(
    conn: HTTPConnection, cookie_name: str | Sequence[str] = "__session"
) -> str | None:
    """The token a connection carries, or ``None``.

    * ``Authorization: Bearer <token>`` (scheme in any case), or ``Authorization: <jwt>`` with
      no scheme when the whole value is a compact JWT, as Clerk's SDKs accept. A Bearer header
      is authoritative: when present, no cookie is consulted, even if its credentials are empty.
      Another scheme (``Basic ...``) carries no session token.
    * Else the session cookie: ``cookie_name``, or the first present of several names.

    Ambiguity is refused with 401 ``token-invalid``, since which copy a proxy or framework
    would pick is not well defined: more than one ``Authorization`` header, or, when the cookie
    is read, the same session cookie twice (cookie tossing from a sibling subdomain).
    """
    authorization: bytes | None = None
    count = 0
    cookie_headers: list[bytes] = []
    for name, value in conn.scope["headers"]:
        if name == b"authorization":
            authorization = value
            count += 1
        elif name == b"cookie":
            cookie_headers.append(value)
    if count > 1:
        raise ClerkAuthError(
            ErrorReason.TOKEN_INVALID,
            f"the request has {count} Authorization headers; send exactly one",
        )
    if authorization is not None:
        text = authorization.decode("latin-1").strip()
        scheme, space, credentials = text.partition(" ")
        if space and scheme.lower() == "bearer":
            return credentials.strip() or None
        if not space and _COMPACT_JWT.fullmatch(text):
            return text
        if not space and text.lower() == "bearer":
            return None  # "Bearer" with nothing after it: still a Bearer header
    if not cookie_headers:
        return None
    names = (cookie_name,) if isinstance(cookie_name, str) else tuple(cookie_name)
    return _session_cookie(cookie_headers, names)


def _session_cookie(cookie_headers: list[bytes], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in the raw ``Cookie`` headers; a name sent twice is
    refused. (Starlette's ``conn.cookies`` keeps only one value per name, hiding the second.)"""
    found: dict[str, list[str]] = {}
    for header in cookie_headers:
        for pair in header.decode("latin-1").split(";"):
            key, equals, value = pair.partition("=")
            key = key.strip()
            if equals and key in names:
                found.setdefault(key, []).append(value.strip().strip('"'))
    for name in names:
        values = found.get(name)
        if values is None:
            continue
        if len(values) > 1:
            raise ClerkAuthError(
                ErrorReason.TOKEN_INVALID,
                f"the request has {len(values)} {name} cookies; a second session cookie is "
                "refused (it may have been set by a sibling subdomain)",
            )
        if values[0]:
            return values[0]
    return None


# -- refusals ----------------------------------------------------------------------------


def error_for_connection(conn: HTTPConnection, error: ClerkAuthError) -> Exception:
    """``error`` as ``conn`` must receive it, for code that cannot ``await``: an HTTP request,
    or a WebSocket on a server with the ASGI denial response, gets ``error`` itself (the app's
    handler answers the handshake with it); another WebSocket is closed with 1008 and the
    reason code. Prefer ``await clerk_deps.websocket.refusal_for(conn, error, settings)``,
    which also honours ``CLERK_WEBSOCKET_REFUSAL`` and accepts first so browsers see the close.
    """
    if conn.scope["type"] == "websocket" and "websocket.http.response" not in (
        conn.scope.get("extensions") or {}
    ):
        return WebSocketException(WS_1008_POLICY_VIOLATION, error.reason.value)
    return error
