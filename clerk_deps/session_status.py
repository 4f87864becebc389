"""Enforcing revocation on the request path, and ``CLERK_REVOCATION=backend_api``.

:func:`enforce_revocation` is what ``verify_token`` calls after a cache hit or a fresh
verification when ``CLERK_REVOCATION`` is not ``off``. The webhooks mode costs two dictionary
lookups. The ``backend_api`` mode also asks Clerk for the session's status
(``GET /v1/sessions/{sid}``), remembering the answer for ``CLERK_SESSION_STATUS_TTL`` seconds,
with one call in flight per session and a cap on calls per second; when Clerk cannot answer,
``CLERK_REVOCATION_FAIL_OPEN`` decides between accepting the token (with a warning) and 503
``session-status-unavailable``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

from .backend_api import ClerkAPIError, ClerkBackendAPI
from .budget import CallBudget
from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .revocation import revocation_list, revoked_error
from .settings import ClerkSettings
from .store import store_for

__all__ = [
    "ACTIVE_STATUSES",
    "SessionStatusChecker",
    "clear_status_checkers",
    "enforce_revocation",
    "status_checker_for",
]

logger = logging.getLogger("clerk_deps")

ACTIVE_STATUSES = frozenset({"active", "pending"})
"""Session statuses whose tokens stay accepted (``pending`` is judged by the ``sts`` claim)."""
CALLS_PER_SECOND = 20.0
"""Session look-ups per second this process may make (bursts up to twice that). Clerk allows
100 Backend API requests per 10 s on development instances and 1,000 in production."""
FAILURE_TTL = 2.0
"""Seconds a failed look-up is not retried for the same session."""
_MAX_SESSIONS = 100_000

_revocations = revocation_list()


class SessionStatusChecker:
    """Session statuses of one Clerk instance, read from the Backend API and cached briefly."""

    def __init__(
        self,
        api: ClerkBackendAPI,
        *,
        ttl: float = 5.0,
        fail_open: bool = True,
        calls_per_second: float = CALLS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.ttl = ttl
        self.fail_open = fail_open
        self.clock = clock
        self.budget = CallBudget(calls_per_second, 2 * calls_per_second)
        # sid -> (status or None when the look-up failed, monotonic time it is good until)
        self._known: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[str | None]]
        ] = weakref.WeakKeyDictionary()
        self._warned_at = -1e18

    def __repr__(self) -> str:
        return f"SessionStatusChecker(api_url={self.api.api_url!r}, ttl={self.ttl:g})"

    async def status(self, session_id: str) -> str | None:
        """The session's status (``"revoked"``, ...; ``"missing"`` when Clerk has no such
        session), or ``None`` when it could not be read."""
        known = self._known.get(session_id)
        if known is not None and known[1] > self.clock():
            return known[0]
        flights = self._flights.setdefault(asyncio.get_running_loop(), {})
        task = flights.get(session_id)
        if task is None:
            task = asyncio.ensure_future(self._look_up(session_id))
            flights[session_id] = task
            task.add_done_callback(lambda _: flights.pop(session_id, None))
        return await asyncio.shield(task)

    async def check(self, claims: ClerkClaims, settings: ClerkSettings, now: float) -> None:
        """Refuse the token when Clerk reports its session is not active."""
        sid = claims.sid
        if sid is None:
            return
        status = await self.status(sid)
        if status is None:
            if self.fail_open:
                return
            raise ClerkAuthError(
                ErrorReason.SESSION_STATUS_UNAVAILABLE,
                "could not read the session's status from Clerk's Backend API, and "
                "CLERK_REVOCATION_FAIL_OPEN is false; retry shortly",
                retry_after=max(1, round(FAILURE_TTL)),
            )
        if status in ACTIVE_STATUSES:
            return
        entry = _revocations.revoke("session", sid)
        await store_for(settings).publish_revocation(entry)
        raise revoked_error(entry, now)

    async def _look_up(self, session_id: str) -> str | None:
        if self.budget.take(self.clock()) > 0:
            self._warn("more session look-ups than the budget allows")
            self._remember(session_id, None, min(FAILURE_TTL, self.ttl or FAILURE_TTL))
            return None
        try:
            session = await self.api.get_session(session_id)
        except ClerkAPIError as error:
            if error.status_code == 404:
                self._remember(session_id, "missing", self.ttl)
                return "missing"
            self._warn(str(error))
            self._remember(session_id, None, FAILURE_TTL)
            return None
        status = session.get("status")
        found = status if isinstance(status, str) else None
        self._remember(session_id, found, self.ttl if found else FAILURE_TTL)
        return found

    def _remember(self, session_id: str, status: str | None, ttl: float) -> None:
        with self._lock:
            self._known[session_id] = (status, self.clock() + ttl)
            self._known.move_to_end(session_id)
            while len(self._known) > _MAX_SESSIONS:
                self._known.popitem(last=False)

    def _warn(self, cause: str) -> None:
        now = self.clock()
        if now - self._warned_at >= 60:
            self._warned_at = now
            verdict = "accepting tokens" if self.fail_open else "refusing tokens with 503"
            logger.warning(
                "clerk_deps: session status unavailable (%s); %s until Clerk answers "
                "(CLERK_REVOCATION_FAIL_OPEN)",
                cause,
                verdict,
            )


_checkers: dict[tuple[str, str, float, bool], SessionStatusChecker] = {}
_checkers_lock = threading.Lock()


def status_checker_for(settings: ClerkSettings) -> SessionStatusChecker:
    """The shared checker of the instance behind ``settings``."""
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            "CLERK_REVOCATION=backend_api reads session status from the Backend API, which "
            "needs CLERK_SECRET_KEY; set it, or use CLERK_REVOCATION=webhooks",
        )
    secret = settings.secret_key.get_secret_value()
    scope = (
        settings.api_url,
        hashlib.sha256(secret.encode()).hexdigest(),
        settings.session_status_ttl,
        settings.revocation_fail_open,
    )
    checker = _checkers.get(scope)
    if checker is not None:
        return checker
    with _checkers_lock:
        checker = _checkers.get(scope)
        if checker is None:
            checker = _checkers[scope] = SessionStatusChecker(
                ClerkBackendAPI.from_settings(settings),
                ttl=settings.session_status_ttl,
                fail_open=settings.revocation_fail_open,
            )
        return checker


def clear_status_checkers() -> None:
    """Forget every cached session status (tests)."""
    with _checkers_lock:
        _checkers.clear()


async def enforce_revocation(claims: ClerkClaims, settings: ClerkSettings, now: float) -> None:
    """Raise 401 ``session-revoked`` when Clerk has ended this token's session.

    Called by ``verify_token`` when ``settings.revocation`` is not ``"off"``. With Redis, the
    first call of a worker waits (once, briefly) for the revocations other workers published.
    """
    if settings.redis_url is not None:
        await store_for(settings).ready()
    _revocations.check(claims, now)
    if settings.revocation == "backend_api":
        await status_checker_for(settings).check(claims, settings, now)
