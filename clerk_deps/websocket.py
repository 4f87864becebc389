"""WebSockets: where a browser's token comes from, and how a refused handshake is answered.

A browser cannot set headers on a WebSocket, so a WebSocket route reads its token from, in
this order:

1. the ``Authorization`` header, as on HTTP routes (non-browser clients);
2. the subprotocol ``clerk.token.<token>``, when ``CLERK_WEBSOCKET_TOKEN_PROTOCOL`` is on:
   ``new WebSocket(url, ["clerk", "clerk.token." + await getToken()])``. The server echoes
   ``clerk`` (see :func:`accept_websocket`), never the token;
3. the query parameter named by ``CLERK_WEBSOCKET_QUERY_PARAM``, only when set (URLs are
   written to access logs, proxies and browser history, and the token with them);
4. the session cookie, which a same-origin browser sends by itself (pair it with
   :func:`require_origin` against cross-site WebSocket hijacking).

A refused handshake tells the client why: where the server supports the ASGI WebSocket denial
response (uvicorn, hypercorn, Starlette's ``TestClient``), the handshake is answered with the
same status, JSON body and ``WWW-Authenticate`` as an HTTP route; elsewhere the socket is
accepted and closed at once with code 1008 and the reason code as the close reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.websockets import WebSocket, WebSocketState

from .connection import resolve_settings
from .errors import ClerkAuthError, ErrorReason
from .settings import ClerkSettings

__all__ = [
    "CLERK_SUBPROTOCOL",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "accept_websocket",
    "refusal_for",
    "require_origin",
    "websocket_token",
]

CLERK_SUBPROTOCOL = "clerk"
"""The subprotocol a browser offers beside its token, and the one the server echoes."""

TOKEN_SUBPROTOCOL_PREFIX = "clerk.token."
"""``clerk.token.<token>``: the offered subprotocol that carries the session token."""

_DENIAL_EXTENSION = "websocket.http.response"


def websocket_token(conn: HTTPConnection, settings: ClerkSettings) -> str | None:
    """The token a WebSocket handshake carries in a subprotocol or the query string, when
    ``settings`` turn those transports on; ``None`` otherwise, and always ``None`` for HTTP
    requests and for handshakes with an ``Authorization`` header (the header wins).

    Offering two token subprotocols, or repeating the query parameter, is refused with
    ``token-invalid``: which one a proxy or framework would pick is not well defined.
    """
    if conn.scope["type"] != "websocket" or "authorization" in conn.headers:
        return None
    if settings.websocket_token_protocol:
        offered = _token_subprotocols(conn)
        if len(offered) > 1:
            raise ClerkAuthError(
                ErrorReason.TOKEN_INVALID,
                f"the handshake offers {len(offered)} {TOKEN_SUBPROTOCOL_PREFIX}* subprotocols; "
                "offer exactly one",
            )
        if offered and offered[0]:
            return offered[0]
    name = settings.websocket_query_param
    if name:
        values = conn.query_params.getlist(name)
        if len(values) > 1:
            raise ClerkAuthError(
                ErrorReason.TOKEN_INVALID,
                f"the URL has {len(values)} '{name}' query parameters; send exactly one",
            )
        if values and values[0]:
            return values[0]
    return None


def _offered(conn: HTTPConnection) -> list[str]:
    return [p for p in conn.scope.get("subprotocols") or () if isinstance(p, str)]


def _token_subprotocols(conn: HTTPConnection) -> list[str]:
    prefix = TOKEN_SUBPROTOCOL_PREFIX
    return [p[len(prefix) :] for p in _offered(conn) if p.startswith(prefix)]


def _echoable(conn: HTTPConnection) -> list[str]:
    return [p for p in _offered(conn) if not p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]


async def accept_websocket(websocket: WebSocket, subprotocol: str | None = None) -> None:
    """Accept ``websocket``, echoing a subprotocol the browser offered.

    ``subprotocol`` is your app's own protocol when it has one (it must be among those
    offered); else ``clerk`` is echoed when offered. A browser that offered subprotocols
    drops a connection whose answer names none, so use this instead of ``websocket.accept()``
    when tokens travel as ``clerk.token.<token>``. The token subprotocol is never echoed.
    """
    if subprotocol is not None and subprotocol not in _echoable(websocket):
        raise ValueError(
            f"subprotocol {subprotocol!r} was not offered by the client (or carries a token)"
        )
    if subprotocol is None and CLERK_SUBPROTOCOL in _offered(websocket):
        subprotocol = CLERK_SUBPROTOCOL
    await websocket.accept(subprotocol=subprotocol)


async def refusal_for(
    conn: HTTPConnection, error: ClerkAuthError, settings: ClerkSettings | None = None
) -> Exception:
    """``error`` as ``conn`` must receive it; raise what this returns.

    An HTTP request, or a WebSocket on a server with the ASGI denial response, gets ``error``
    itself: the app's exception handler renders it (status, JSON body, ``WWW-Authenticate``)
    as the answer to the handshake. Elsewhere, or when ``settings.websocket_refusal`` is
    ``"close"``, the WebSocket is accepted here (echoing an offered subprotocol, so that a
    browser does not drop it first) and the returned ``WebSocketException`` closes it with
    code 1008 and the reason code.
    """
    if conn.scope["type"] != "websocket":
        return error
    mode = settings.websocket_refusal if settings is not None else await _refusal_mode(conn)
    if mode == "response" and _DENIAL_EXTENSION in (conn.scope.get("extensions") or {}):
        return error
    if isinstance(conn, WebSocket) and conn.application_state is WebSocketState.CONNECTING:
        echoable = _echoable(conn)
        chosen = CLERK_SUBPROTOCOL if CLERK_SUBPROTOCOL in echoable else None
        await conn.accept(subprotocol=chosen or (echoable[0] if echoable else None))
    return WebSocketException(WS_1008_POLICY_VIOLATION, error.reason.value)


async def _refusal_mode(conn: HTTPConnection) -> str:
    try:
        return (await resolve_settings(conn)).websocket_refusal
    except Exception:  # the settings' own error is reported by the dependency that needs them
        return "response"


def require_origin(*origins: str) -> Callable[[HTTPConnection], Awaitable[None]]:
    """A dependency that refuses a browser connection from another site (403
    ``origin-not-allowed``): guards cookie-authenticated WebSockets against cross-site
    WebSocket hijacking, where a page on another site opens a socket to your API and the
    browser attaches your user's cookie.

    Passes when the ``Origin`` header is absent (not a browser), equals one of ``origins``
    (``"https://app.example.com"``; a trailing slash is ignored), or names the host the
    request was sent to (same origin: ``Origin``'s host and port equal the ``Host`` header).
    Put it in the route's ``dependencies=[Depends(require_origin(...))]``; it works on HTTP
    routes too.
    """
    allowed = frozenset(_normalized_origin(origin) for origin in origins)

    async def check_origin(conn: HTTPConnection) -> None:
        origin = conn.headers.get("origin")
        if origin is None or _origin_allowed(origin, conn.headers.get("host"), allowed):
            return
        shown = origin if len(origin) <= 100 else origin[:97] + "..."
        error = ClerkAuthError(
            ErrorReason.ORIGIN_NOT_ALLOWED,
            f"Origin {shown!r} is neither this server's host nor one of the allowed origins "
            f"({', '.join(sorted(allowed)) or 'none configured'})",
        )
        raise await refusal_for(conn, error)

    check_origin.__name__ = check_origin.__qualname__ = "require_origin"
    return check_origin


def _normalized_origin(origin: str) -> str:
    if not isinstance(origin, str) or not origin.strip():
        raise ValueError(
            "an allowed origin is a non-empty string such as 'https://app.example.com'"
        )
    return origin.strip().rstrip("/").lower()


def _origin_allowed(origin: str, host: str | None, allowed: Iterable[str]) -> bool:
    normalized = origin.strip().rstrip("/").lower()
    if normalized in allowed:
        return True
    try:
        netloc = urlsplit(normalized).netloc
    except ValueError:
        return False
    return bool(netloc) and host is not None and netloc == host.strip().lower()
