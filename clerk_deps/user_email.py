"""``require_clerk_user_with_email``: claims whose ``email`` is filled in when Clerk knows it.

Session tokens usually carry no email. When the token has none, the user's primary address
is looked up through the Backend API (``GET /v1/users/{sub}``), cached per user, with
concurrent lookups for one user coalesced into one call. If the Backend API fails, the
request still succeeds with ``email=None`` and a warning names the cause.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .auth import ClerkAuth, default_auth
from .backend_api import ClerkAPIError, ClerkBackendAPI, primary_email_address
from .claims import ClerkClaims
from .settings import ClerkSettings
from .store import store_for

__all__ = [
    "CurrentUserWithEmailDep",
    "EmailLookup",
    "email_lookup_for",
    "require_clerk_user_with_email",
    "user_with_email_dependency",
]

logger = logging.getLogger("clerk_deps")

EMAIL_TTL = 300.0
"""Seconds a looked-up address is reused."""
FAILURE_TTL = 10.0
"""Seconds a failed lookup is not retried, so an outage does not slow every request."""


class EmailLookup:
    """Primary email addresses of one Clerk instance, cached with a TTL, lookups coalesced."""

    def __init__(
        self,
        api: ClerkBackendAPI,
        *,
        ttl: float = EMAIL_TTL,
        failure_ttl: float = FAILURE_TTL,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        shared_by: ClerkSettings | None = None,
    ) -> None:
        self.api = api
        # with CLERK_REDIS_URL, addresses are shared with every worker through the store
        self._shared_by = shared_by if shared_by is not None and shared_by.redis_url else None
        secret = shared_by.secret_key if shared_by is not None else None
        api_url = shared_by.api_url if shared_by is not None else ""
        instance = f"{api_url} {secret.get_secret_value() if secret else ''}"
        self._shared_prefix = "email:" + hashlib.sha256(instance.encode()).hexdigest()[:16]
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_size = max_size
        self.clock = clock
        self._known: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[str | None]]
        ] = weakref.WeakKeyDictionary()

    async def primary_email(self, user_id: str) -> str | None:
        """The user's primary address, or ``None`` (unknown, none set, or lookup failed)."""
        with self._lock:
            known = self._known.get(user_id)
        if known is not None and known[1] > self.clock():
            return known[0]
        flights = self._flights.setdefault(asyncio.get_running_loop(), {})
        task = flights.get(user_id)
        if task is None:
            task = asyncio.ensure_future(self._look_up(user_id))
            flights[user_id] = task
            task.add_done_callback(lambda _: flights.pop(user_id, None))
        return await asyncio.shield(task)

    async def _look_up(self, user_id: str) -> str | None:
        store = None if self._shared_by is None else store_for(self._shared_by)
        key = f"{self._shared_prefix}:{user_id}"
        if store is not None:
            shared = await store.get(key)
            if shared is not None:  # another worker looked it up
                email = json.loads(shared).get("email")
                email = email if isinstance(email, str) else None
                self._remember(user_id, email, self.ttl)
                return email
        try:
            email = primary_email_address(await self.api.get_user(user_id))
        except ClerkAPIError as error:
            logger.warning("clerk_deps: could not look up the email of %s: %s", user_id, error)
            self._remember(user_id, None, self.failure_ttl)
            return None
        self._remember(user_id, email, self.ttl)
        if store is not None:
            await store.put(key, json.dumps({"email": email}), self.ttl)
        return email

    def _remember(self, user_id: str, email: str | None, ttl: float) -> None:
        with self._lock:
            self._known[user_id] = (email, self.clock() + ttl)
            self._known.move_to_end(user_id)
            while len(self._known) > self.max_size:
                self._known.popitem(last=False)


_lookups: dict[tuple[str, str, str], EmailLookup] = {}
_lookups_lock = threading.Lock()


def email_lookup_for(settings: ClerkSettings) -> EmailLookup | None:
    """The shared lookup of the instance behind ``settings``; ``None`` without a secret key."""
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        return None
    secret = settings.secret_key.get_secret_value()
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    scope = (settings.api_url, hashlib.sha256(secret.encode()).hexdigest(), redis_url)
    with _lookups_lock:
        lookup = _lookups.get(scope)
        if lookup is None:
            lookup = _lookups[scope] = EmailLookup(
                ClerkBackendAPI.from_settings(settings), shared_by=settings
            )
        return lookup


def clear_email_lookups() -> None:
    """Forget every cached address (tests; a process that reloads configuration)."""
    with _lookups_lock:
        _lookups.clear()
    _warned_no_secret.clear()


_warned_no_secret = threading.Event()


def _warn_no_secret_once() -> None:
    if not _warned_no_secret.is_set():
        _warned_no_secret.set()
        logger.warning("clerk_deps: CLERK_SECRET_KEY is not set, so email cannot be looked up")


def user_with_email_dependency(auth: ClerkAuth) -> Callable[..., Awaitable[ClerkClaims]]:
    """The dependency behind ``auth.user_with_email``: ``auth.user`` with ``email`` filled in
    from the Backend API of the token's instance."""

    async def dependency(conn: HTTPConnection, user: ClerkClaims) -> ClerkClaims:
        if user.email:
            return user
        lookup = email_lookup_for(await auth.settings_for(conn, user))
        if lookup is None:
            _warn_no_secret_once()
            return user
        email = await lookup.primary_email(user.sub)
        if email is None:
            return user
        enriched = user.model_copy(update={"email": email})
        conn.state.clerk_user = enriched
        return enriched

    # Built here, not from annotations: the dependency on ``auth.user`` differs per ClerkAuth.
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("conn", _KEYWORD, annotation=HTTPConnection),
            inspect.Parameter(
                "user", _KEYWORD, annotation=Annotated[ClerkClaims, Depends(auth.user)]
            ),
        ],
        return_annotation=ClerkClaims,
    )
    dependency.__name__ = dependency.__qualname__ = "user_with_email"
    dependency.__doc__ = user_with_email_dependency.__doc__
    return dependency


_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD

require_clerk_user_with_email = default_auth.user_with_email
"""Like ``require_clerk_user``, with ``email`` filled from the Backend API when missing.

Needs ``CLERK_SECRET_KEY``; without it, or when the lookup fails, ``email`` stays ``None``
and the request goes on."""
require_clerk_user_with_email.__name__ = "require_clerk_user_with_email"
require_clerk_user_with_email.__qualname__ = "require_clerk_user_with_email"


CurrentUserWithEmailDep = Annotated[ClerkClaims, Depends(require_clerk_user_with_email)]
"""``user: CurrentUserWithEmailDep``: verified claims with ``email`` filled in when possible."""
