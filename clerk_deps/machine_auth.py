"""One entry point for every kind of Clerk token, and the FastAPI dependencies built on it.

``authenticate(token, accepts=...)`` tells the token's type from its shape, refuses a type the
caller does not accept (401 ``token-type-mismatch``, before any network call), then verifies it:
session tokens with :func:`~clerk_deps.tokens.verify_token`, JWT machine tokens locally with the
instance's keys, opaque machine tokens through Clerk's Backend API (cached, single flight,
within a call budget). ``require_clerk_auth`` and ``require_machine`` do the same for a route,
reading machine tokens from the ``Authorization`` header only, never from a cookie.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from .claims import ClerkClaims
from .connection import extract_token, resolve_settings, session_cookie_names
from .errors import ClerkAuthError, ErrorReason
from .jws import decode_unverified
from .keys import key_source_for
from .machine_jwt import verify_machine_jwt
from .machine_tokens import (
    LABELS,
    MACHINE_TYPES,
    Accepts,
    MachineAuth,
    TokenType,
    accepted_types,
    detect_token_type,
    opaque_type,
    require_scopes,
)
from .machine_verify import verifier_for
from .settings import ClerkSettings, get_settings
from .tokens import verify_token
from .websocket import refusal_for

if TYPE_CHECKING:
    from .auth import ClerkAuth

__all__ = [
    "MachineAuthDep",
    "authenticate",
    "machine_dependencies",
    "require_clerk_auth",
    "require_machine",
]

Clock = Callable[[], float]
_SESSION_ONLY = frozenset({TokenType.SESSION_TOKEN})
_ALL_MACHINES = (TokenType.M2M_TOKEN, TokenType.API_KEY, TokenType.OAUTH_TOKEN)
_HEADER_ONLY: tuple[str, ...] = ()  # no cookie name: extract_token reads the header only


async def authenticate(
    token: str,
    settings: ClerkSettings | None = None,
    *,
    accepts: Accepts = TokenType.SESSION_TOKEN,
    clock: Clock = time.time,
) -> ClerkClaims | MachineAuth:
    """Verify any Clerk token: :class:`ClerkClaims` for a session token, :class:`MachineAuth`
    for an M2M token, OAuth access token or API key; else raise :class:`ClerkAuthError`.

    ``accepts`` is a :class:`TokenType`, a list of them, or ``"any"`` (default: session tokens
    only). A token of another type is 401 ``token-type-mismatch`` without any network call.
    ``settings`` defaults to :func:`get_settings`; ``clock`` (seconds since the epoch) is for
    tests.
    """
    types = _accepted(accepts)
    kind = opaque_type(token)
    if kind is not None:  # the hot path of API keys, kept free of extra awaits
        check_accepted(kind, types)
        verifier = verifier_for(settings or get_settings())
        now = clock()
        verdict = verifier.cache.get(token, now)
        if verdict is not None and verdict.auth is not None:
            return verdict.auth  # a remembered acceptance, as verify() would return it
        return await verifier.verify(token, kind, now)
    return await _authenticate(token, settings, types, clock)


# What each hashable ``accepts`` value means, looked up once (a dict, not lru_cache: a hit
# costs half as much, and the API-key hit path pays it on every call). Bounded.
_accepted_by_value: dict[Any, frozenset[TokenType]] = {}


def _accepted(accepts: Accepts) -> frozenset[TokenType]:
    try:
        found = _accepted_by_value.get(accepts)
    except TypeError:  # a list: not hashable
        return accepted_types(accepts)
    if found is None:
        found = accepted_types(accepts)
        if len(_accepted_by_value) < 64:
            _accepted_by_value[accepts] = found
    return found


async def _authenticate(
    token: str, settings: ClerkSettings | None, types: frozenset[TokenType], clock: Clock
) -> ClerkClaims | MachineAuth:
    if settings is None:
        settings = get_settings()
    kind = opaque_type(token)
    if kind is not None:
        check_accepted(kind, types)
        return await verifier_for(settings).verify(token, kind, clock())
    if types == _SESSION_ONLY:  # verify_token refuses machine JWTs itself, header checks first
        return await verify_token(token, settings, clock=clock)
    try:
        decoded = decode_unverified(token)
    except ClerkAuthError:
        if TokenType.SESSION_TOKEN in types:
            raise
        # Not a JWT and no machine prefix: by Clerk's rule, that is a (broken) session token.
        check_accepted(TokenType.SESSION_TOKEN, types)
        raise  # pragma: no cover - check_accepted raised
    kind = detect_token_type(token, decoded[0], decoded[1])
    check_accepted(kind, types)
    if kind is TokenType.SESSION_TOKEN:
        return await verify_token(token, settings, clock=clock)
    return await verify_machine_jwt(decoded, kind, settings, clock())


def _describe(types: Iterable[TokenType]) -> str:
    return ", ".join(sorted(t.value for t in types))


def check_accepted(kind: TokenType, types: frozenset[TokenType]) -> None:
    """Raise ``token-type-mismatch`` unless ``kind`` is one of ``types``."""
    if kind not in types:
        raise ClerkAuthError(
            ErrorReason.TOKEN_TYPE_MISMATCH,
            f"the token is {LABELS[kind]} ({kind.value}); this endpoint accepts {_describe(types)}",
        )


# -- FastAPI -----------------------------------------------------------------------------


_FORMATS = {
    TokenType.SESSION_TOKEN: "session JWT",
    TokenType.M2M_TOKEN: "M2M token (mt_... or JWT)",
    TokenType.OAUTH_TOKEN: "OAuth access token (oat_... or JWT)",
    TokenType.API_KEY: "API key (ak_...)",
}
_SCHEME_NAMES = {
    TokenType.SESSION_TOKEN: "Session",
    TokenType.M2M_TOKEN: "M2M",
    TokenType.OAUTH_TOKEN: "OAuth",
    TokenType.API_KEY: "ApiKey",
}
_ORDER = list(TokenType)

# Every dependency made here, so that the testing kit can override them all.
_made: weakref.WeakSet[ClerkAuthDependency] = weakref.WeakSet()


class ClerkAuthDependency(SecurityBase):
    """A route dependency accepting ``types``; see :func:`require_clerk_auth`.

    Being a security scheme, it documents in OpenAPI an HTTP bearer scheme naming the token
    types it accepts, so /docs shows how to call the route.
    """

    def __init__(
        self,
        types: frozenset[TokenType],
        scopes: tuple[str, ...],
        auth: ClerkAuth | None,
        name: str,
    ) -> None:
        self.types = types
        self.scopes = scopes
        self.auth = auth
        ordered = [t for t in _ORDER if t in types]
        self.model = HTTPBearerModel(
            bearerFormat=" or ".join(_FORMATS[t] for t in ordered),
            description=_scheme_description(ordered, scopes),
        )
        self.scheme_name = "Clerk" + "Or".join(_SCHEME_NAMES[t] for t in ordered)
        self.__name__ = self.__qualname__ = name
        _made.add(self)

    def __repr__(self) -> str:
        return self.__name__

    async def __call__(self, conn: HTTPConnection) -> ClerkClaims | MachineAuth:
        settings: ClerkSettings | None = None
        try:
            token = extract_token(conn, _HEADER_ONLY)
            settings = await self._settings(conn, token)
            result = await self._authenticate(conn, token, settings)
            if isinstance(result, MachineAuth):
                require_scopes(result, self.scopes)
        except ClerkAuthError as error:
            raise await self.refusal(conn, error, settings) from None
        self.store(conn, result)
        return result

    async def refusal(
        self, conn: HTTPConnection, error: ClerkAuthError, settings: ClerkSettings | None = None
    ) -> Exception:
        """``error`` as ``conn`` must receive it (see :func:`~clerk_deps.websocket.refusal_for`),
        the same way a session dependency refuses it: a WebSocket follows the
        ``websocket_refusal`` of ``settings`` (the instance that read the token), else of
        this dependency's first instance."""
        if settings is None and self.auth is not None and conn.scope["type"] == "websocket":
            settings = await self._settings(conn, None)
        return await refusal_for(conn, error, settings)

    @staticmethod
    def store(conn: HTTPConnection, result: ClerkClaims | MachineAuth) -> None:
        """Put ``result`` on ``conn.state``: ``clerk_auth`` always, ``clerk_user`` for a user
        session, ``clerk_machine`` for a machine token."""
        conn.state.clerk_auth = result
        if isinstance(result, MachineAuth):
            conn.state.clerk_machine = result
        else:
            conn.state.clerk_user = result

    async def _authenticate(
        self, conn: HTTPConnection, token: str | None, settings: ClerkSettings
    ) -> ClerkClaims | MachineAuth:
        # Machine tokens come only from the Authorization header (``token``); a cookie is read
        # only when session tokens are accepted, and only a session token is accepted from it.
        if token is not None:
            return await _authenticate(token, settings, self.types, time.time)
        if TokenType.SESSION_TOKEN in self.types:
            names = session_cookie_names(settings.session_cookie, settings.publishable_key)
            token = extract_token(conn, names)
            if token is not None:
                return await _authenticate(token, settings, _SESSION_ONLY, time.time)
            key_source_for(settings)  # misconfiguration first, never mistaken for a 401
        raise ClerkAuthError(
            ErrorReason.SESSION_TOKEN_MISSING,
            f"no token: send 'Authorization: Bearer <token>' with a {_describe(self.types)}",
        )

    async def _settings(self, conn: HTTPConnection, token: str | None) -> ClerkSettings:
        """The instance that verifies ``token``: with a ``ClerkAuth`` of several instances, a
        JWT goes to the one named by its ``iss``; an opaque token (no issuer) and a missing
        token to the first instance configured."""
        auth = self.auth
        if auth is None:
            return await resolve_settings(conn)
        if token is None or opaque_type(token) is not None:
            return (await auth.all_settings(conn))[0]
        return await auth.settings_for(conn, token)


def _scheme_description(ordered: list[TokenType], scopes: tuple[str, ...]) -> str:
    kinds = ", ".join(_FORMATS[t] for t in ordered)
    text = f"A Clerk token in `Authorization: Bearer <token>`: {kinds}."
    if set(ordered) & MACHINE_TYPES:
        text += " Machine tokens are read from this header only, never from a cookie."
    if scopes:
        text += f" Machine tokens need the scopes: {', '.join(scopes)}."
    return text


def require_clerk_auth(
    accepts: Accepts = TokenType.SESSION_TOKEN,
    scopes: Iterable[str] = (),
    *,
    auth: ClerkAuth | None = None,
) -> ClerkAuthDependency:
    """A dependency returning :class:`ClerkClaims` (session token) or :class:`MachineAuth`
    (machine token), for the token types in ``accepts`` (a type, a list, or ``"any"``).

    ``scopes``: every one is required of a machine token, else 403 ``scope-required`` naming
    the missing scope (session tokens have no scopes). ``auth``: the ``ClerkAuth`` whose
    instances verify the token (default: the settings from ``get_settings``). The result is
    also stored on ``request.state.clerk_auth``.
    """
    types = accepted_types(accepts)
    needed = _scopes(scopes)
    return ClerkAuthDependency(types, needed, auth, f"require_clerk_auth({_describe(types)})")


def require_machine(
    accepts: Accepts = _ALL_MACHINES,
    scopes: Iterable[str] = (),
    *,
    auth: ClerkAuth | None = None,
) -> Callable[[HTTPConnection], Any]:
    """A dependency returning the :class:`MachineAuth` of an M2M token, OAuth access token or
    API key (``accepts`` narrows it), with every one of ``scopes``; session tokens are refused
    with 401 ``token-type-mismatch``."""
    types = accepted_types(accepts)
    if TokenType.SESSION_TOKEN in types:
        raise ValueError(
            "require_machine accepts machine tokens only; for session tokens too, use "
            "require_clerk_auth"
        )
    return ClerkAuthDependency(types, _scopes(scopes), auth, f"require_machine({_describe(types)})")


def _scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        return (scopes,)
    needed = tuple(scopes)
    if not all(isinstance(scope, str) and scope for scope in needed):
        raise ValueError("scopes must be non-empty strings")
    return needed


def machine_dependencies() -> list[ClerkAuthDependency]:
    """Every dependency :func:`require_clerk_auth` and :func:`require_machine` have made."""
    return list(_made)


MachineAuthDep = Annotated[MachineAuth, Depends(require_machine())]
"""``machine: MachineAuthDep`` in a route signature: any verified machine token, or 401."""
