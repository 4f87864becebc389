"""``ClerkAuth``: the settings of one or several Clerk instances, and the dependencies on them.

::

    clerk = ClerkAuth(ClerkSettings(authorized_parties=["https://app.example.com"]))
    app = FastAPI(lifespan=clerk.lifespan)

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]): ...

The module-level ``require_clerk_user``, ``optional_clerk_user`` and ``clerk_lifespan`` are the
members of :data:`default_auth`, a ``ClerkAuth()`` that reads ``get_settings()`` (or the app's
override of it) on each request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from ._http import close_shared_client
from .claims import ClerkClaims
from .connection import (
    call_settings_factory,
    extract_token,
    resolve_settings,
)
from .errors import ClerkAuthError, ErrorReason
from .instances import Instance, IssuerRouter
from .settings import ClerkSettings, get_settings
from .store import close_stores
from .websocket import refusal_for, websocket_token

__all__ = ["ClerkAuth", "ClerkUserDependency", "OptionalClerkUserDependency", "default_auth"]

logger = logging.getLogger("clerk_deps")

_BEARER = HTTPBearerModel(
    bearerFormat="JWT",
    description="A Clerk session token: `await getToken()` in the browser, or the "
    "`__session` cookie on same-origin requests.",
)


class _SessionDependency(SecurityBase):
    """A security dependency of a :class:`ClerkAuth`: reads the token, verifies it, stores the
    claims on ``request.state.clerk_user``.

    Being a security scheme, it puts an HTTP bearer scheme (bearerFormat JWT) into the OpenAPI
    document of every route that uses it, so the /docs "Authorize" button works. All the work
    happens in this one dependency, keeping FastAPI's per-dependency overhead off the request.
    """

    def __init__(self, auth: ClerkAuth, name: str, doc: str) -> None:
        self.model = _BEARER
        self.scheme_name = "ClerkSession"
        self.auth = auth
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc

    def __repr__(self) -> str:
        return self.__name__


class ClerkUserDependency(_SessionDependency):
    """``ClerkAuth.user``: the verified claims, or 401 with a reason code."""

    async def __call__(self, conn: HTTPConnection) -> ClerkClaims:
        claims = await self.auth.authenticate(conn, optional=False)
        assert claims is not None
        return claims


class OptionalClerkUserDependency(_SessionDependency):
    """``ClerkAuth.optional_user``: the verified claims, ``None`` without a token, 401 for a
    bad one."""

    async def __call__(self, conn: HTTPConnection) -> ClerkClaims | None:
        return await self.auth.authenticate(conn, optional=True)


class ClerkAuth:
    """The settings of one or several Clerk instances, and the FastAPI dependencies bound to them.

    ``settings`` is a :class:`ClerkSettings`, a list of them (several instances), or ``None``:
    read :func:`get_settings` on each request, honouring ``app.dependency_overrides[get_settings]``
    (that is what the module-level ``require_clerk_user`` does).

    With given settings, the key source, the verified-token cache and the checks are looked up
    once for the life of the object, not per request, and no ``dependency_overrides`` are
    involved. With several instances, each needs an ``issuer`` (or a publishable key); a token
    is verified only by the instance whose issuer is its ``iss``, with that instance's keys,
    caches and settings, and a token whose ``iss`` names none of them is refused with 401
    ``token-invalid-issuer`` without any network call.

    Members: :attr:`user` and :attr:`optional_user` (dependencies), :attr:`user_with_email`,
    :meth:`lifespan`, :meth:`verify`, :meth:`settings_for`. Authorization factories take
    ``auth=``: ``require_org_role("admin", auth=clerk)``.
    """

    def __init__(self, settings: ClerkSettings | Sequence[ClerkSettings] | None = None) -> None:
        self._single: Instance | None = None
        self._router: IssuerRouter | None = None
        self._current: Instance | None = None  # settings=None: the last settings seen
        self._settings: tuple[ClerkSettings, ...] = ()
        self._cookie_names: tuple[str, ...] = ()
        if isinstance(settings, ClerkSettings):
            self._settings = (settings,)
            self._single = Instance(settings)
        elif settings is not None:
            self._settings = _checked_instances(settings)
            if len(self._settings) == 1:
                self._single = Instance(self._settings[0])
            else:
                instances = [Instance(s) for s in self._settings]
                self._router = IssuerRouter(instances)
                # Every instance's suffixed cookie first, then the unsuffixed names.
                names = [n for i in instances for n in i.cookie_names[:-1]]
                names += [i.cookie_names[-1] for i in instances]
                self._cookie_names = tuple(dict.fromkeys(names))
        self.user = ClerkUserDependency(
            self,
            "ClerkAuth.user",
            "FastAPI dependency: the verified claims of the connection's Clerk session, or 401 "
            "with a reason code.",
        )
        self.optional_user = OptionalClerkUserDependency(
            self,
            "ClerkAuth.optional_user",
            "Like ``user``, but ``None`` when the request carries no token at all; a token that "
            "is present and bad is still rejected.",
        )
        self._user_with_email: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        if not self._settings:
            return "ClerkAuth(settings from get_settings())"
        issuers = ", ".join(repr(s.issuer) for s in self._settings)
        return f"ClerkAuth(issuers=[{issuers}])"

    # -- configuration -------------------------------------------------------------------

    @property
    def settings(self) -> tuple[ClerkSettings, ...]:
        """The settings given at construction, one per instance; empty for ``ClerkAuth()``."""
        return self._settings

    async def settings_for(
        self, conn: HTTPConnection | None, token: str | ClerkClaims
    ) -> ClerkSettings:
        """The settings of the instance that verifies ``token`` (or that verified ``claims``).

        One instance: its settings, whatever the token. ``ClerkAuth()``: the connection's
        settings (``get_settings()`` or the app's override; without a connection,
        ``get_settings()``). Several instances: the instance whose issuer is the token's
        ``iss``, read without verification; raises :class:`ClerkAuthError` ``token-invalid``
        for a token that is not a JWT and ``token-invalid-issuer`` when no instance has its
        ``iss``. Nothing is verified here and no network call is made.
        """
        return (await self._instance_for(conn, token)).settings

    async def all_settings(self, conn: HTTPConnection | None = None) -> tuple[ClerkSettings, ...]:
        """The settings of every instance (for ``ClerkAuth()``, the connection's settings)."""
        if self._settings:
            return self._settings
        return ((await self._dynamic_instance(conn)).settings,)

    async def _instance_for(
        self, conn: HTTPConnection | None, token: str | ClerkClaims
    ) -> Instance:
        if self._single is not None:
            return self._single
        if self._router is not None:
            if isinstance(token, ClerkClaims):
                return self._router.for_issuer(token.iss)
            return self._router.route(token)
        return await self._dynamic_instance(conn)

    async def _dynamic_instance(self, conn: HTTPConnection | None) -> Instance:
        """``ClerkAuth()``: the instance of the settings in force for ``conn``."""
        settings = await (
            resolve_settings(conn) if conn is not None else call_settings_factory(None)
        )
        current = self._current
        if current is None or current.settings is not settings:
            current = self._current = Instance(settings)
        return current

    # -- verification --------------------------------------------------------------------

    async def verify(self, token: str, *, clock: Callable[[], float] = time.time) -> ClerkClaims:
        """Verify a session token as :func:`verify_token` does, with the right instance's
        settings. Raises :class:`ClerkAuthError`."""
        if self._router is not None:
            return await self._router.verify(token, clock())
        instance = self._single or await self._dynamic_instance(None)
        return await instance.verify(token, clock())

    async def authenticate(self, conn: HTTPConnection, *, optional: bool) -> ClerkClaims | None:
        """What :attr:`user` (``optional=False``) and :attr:`optional_user` do: the claims of
        the connection's token, stored on ``conn.state.clerk_user``; errors in the form the
        connection can receive (see :func:`~clerk_deps.websocket.refusal_for`)."""
        settings: ClerkSettings | None = None
        try:
            instance = self._single
            if instance is None and self._router is None:
                instance = await self._dynamic_instance(conn)
            names = instance.cookie_names if instance is not None else self._cookie_names
            # WebSocket transports follow the first instance's settings when there are several
            settings = instance.settings if instance is not None else self._settings[0]
            token = websocket_token(conn, settings) or extract_token(conn, names)
            if token is None:
                if optional:
                    return None
                raise self._missing(instance)
            if instance is not None:
                claims = await instance.verify(token, time.time())
            else:
                assert self._router is not None
                claims = await self._router.verify(token, time.time())
        except ClerkAuthError as error:
            raise await refusal_for(conn, error, settings) from None
        conn.scope.setdefault("state", {})["clerk_user"] = claims
        return claims

    def _missing(self, instance: Instance | None) -> ClerkAuthError:
        if instance is not None:
            # Misconfiguration first, so it is never mistaken for a client's 401.
            instance.prepared()
        cookie = (instance.cookie_names if instance else self._cookie_names)[-1]
        return ClerkAuthError(
            ErrorReason.SESSION_TOKEN_MISSING,
            "no session token: send 'Authorization: Bearer <token>' (from Clerk's getToken()) "
            f"or the {cookie} cookie",
        )

    # -- dependencies --------------------------------------------------------------------

    @property
    def user_with_email(self) -> Callable[..., Any]:
        """Dependency: like :attr:`user`, with ``email`` filled from the Backend API of the
        token's instance when the token has none (see ``require_clerk_user_with_email``)."""
        if self._user_with_email is None:
            from .user_email import user_with_email_dependency

            self._user_with_email = user_with_email_dependency(self)
        return self._user_with_email

    def user_dependencies(self) -> tuple[Callable[..., Any], ...]:
        """Every dependency of this object that yields the signed-in user: overriding them
        (the testing kit's ``override_clerk_user(app, auth=...)`` does) replaces
        authentication on every route bound to this object, authorization factories included."""
        return (self.user, self.optional_user, self.user_with_email)

    # -- start-up ------------------------------------------------------------------------

    def lifespan(self, app: FastAPI) -> AbstractAsyncContextManager[None]:
        """``FastAPI(lifespan=clerk.lifespan)``: load every instance's signing keys before the
        first request, and close the shared HTTP client on shutdown.

        Invalid settings stop start-up with their message. Nothing to verify with (no Clerk
        variables at all) is logged as one error line naming the variables, and the app starts:
        protected routes answer 500 ``auth-not-configured`` until it is configured. When the
        app overrides this object's user dependencies (tests with ``override_clerk_user``),
        start-up does not look at Clerk settings at all. An unreachable key server only logs
        a warning.
        """
        return self._lifespan(app)

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.warm_up(app)
        try:
            yield
        finally:
            await close_shared_client()
            await close_stores()

    async def warm_up(self, app: FastAPI | None = None) -> None:
        """Load the signing keys of every instance (what :meth:`lifespan` does at start-up)."""
        overrides = app.dependency_overrides if app is not None else {}
        if any(dependency in overrides for dependency in self.user_dependencies()):
            return  # authentication is replaced: Clerk settings are not needed
        if self._settings:
            instances = [self._single] if self._single else list(self._router.instances)  # type: ignore[union-attr]
        else:
            settings = await call_settings_factory(overrides.get(get_settings))
            instances = [Instance(settings)]
        await asyncio.gather(*(_warm_up(instance) for instance in instances))


async def _warm_up(instance: Instance) -> None:
    try:
        await instance.warm_up()
    except ClerkAuthError as error:
        if error.reason is ErrorReason.AUTH_NOT_CONFIGURED:
            logger.error(
                "clerk_deps: Clerk is not configured: %s", error.message.split(": ", 1)[-1]
            )
        elif error.reason is ErrorReason.JWK_FAILED_TO_LOAD:
            logger.warning("clerk_deps: warm-up could not load signing keys: %s", error.message)
        else:  # pragma: no cover - defensive
            raise


def _checked_instances(settings: Sequence[ClerkSettings]) -> tuple[ClerkSettings, ...]:
    items = tuple(settings)
    if not items:
        raise ValueError("ClerkAuth([]): give at least one ClerkSettings (or None for the default)")
    for index, item in enumerate(items):
        if not isinstance(item, ClerkSettings):
            raise TypeError(
                f"ClerkAuth: instance {index} is a {type(item).__name__}, not ClerkSettings"
            )
    if len(items) == 1:
        return items
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.issuer is None:
            raise ValueError(
                f"ClerkAuth: with several instances each needs an issuer, and instance {index} "
                "has none: set issuer= (or publishable_key=) in its ClerkSettings; tokens are "
                "routed to their instance by iss"
            )
        if item.issuer in seen:
            raise ValueError(
                f"ClerkAuth: instances {seen[item.issuer]} and {index} have the same issuer "
                f"{item.issuer!r}; give each Clerk instance once"
            )
        seen[item.issuer] = index
    keys: dict[str, int] = {}
    for index, item in enumerate(items):
        key = item.jwt_key or item.jwks_url or ""
        if key in keys:
            raise ValueError(
                f"ClerkAuth: instances {keys[key]} and {index} verify with the same signing keys "
                "(the same jwt_key or jwks_url), so one could accept the other's tokens; give "
                "each instance its own (a CLERK_JWT_KEY or CLERK_JWKS_URL in the environment "
                "applies to every ClerkSettings)"
            )
        keys[key] = index
    return items


default_auth = ClerkAuth()
"""The ``ClerkAuth()`` behind ``require_clerk_user``, ``optional_clerk_user`` and
``clerk_lifespan``: settings from ``get_settings()`` or the app's override of it."""
default_auth.user.__name__ = default_auth.user.__qualname__ = "require_clerk_user"
default_auth.user.__doc__ = """FastAPI dependency: the verified claims of the connection's Clerk
session, or a 401 with a reason code. Works on HTTP and WebSocket routes (a failing WebSocket is
closed with code 1008 and the reason code); also stores the claims on
``request.state.clerk_user``. ``app.dependency_overrides[get_settings]`` reconfigures it;
overriding it replaces authentication (and every authorization dependency built on it) in
tests."""
default_auth.optional_user.__name__ = "optional_clerk_user"
default_auth.optional_user.__qualname__ = "optional_clerk_user"
default_auth.optional_user.__doc__ = """Like ``require_clerk_user``, but ``None`` when the
request carries no token at all. A token that is present and bad is still rejected: an invalid
token is never "anonymous"."""
