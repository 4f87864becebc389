"""The token bucket that caps calls to Clerk's Backend API per process.

:class:`CallBudget` is shared by everything that spends the instance's Backend API rate limit
on the request path: opaque machine-token verification (:mod:`clerk_deps.machine_verify`)
and session-status look-ups for ``CLERK_REVOCATION=backend_api``
(:mod:`clerk_deps.session_status`). Each keeps its own budget with its own rate and burst.
"""

from __future__ import annotations

import math
import threading

__all__ = ["CallBudget"]


class CallBudget:
    """A token bucket: ``burst`` calls at once, refilled at ``rate`` calls per second.

    :meth:`pause_until` stops all calls until a moment (Clerk's ``Retry-After`` after a 429).
    Thread-safe; time comes from the caller, so tests drive it with their own clock.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None
        self._paused_until = -math.inf
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """Spend one call: ``0`` when allowed, else the seconds until one will be (``inf``
        when ``rate`` is 0 and the burst is spent)."""
        with self._lock:
            if now < self._paused_until:
                return self._paused_until - now
            if self._updated is not None and now > self._updated:
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            if self._updated is None or now > self._updated:
                self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            # a zero rate never refills: no call until a new budget
            return (1 - self._tokens) / self.rate if self.rate > 0 else math.inf

    def pause_until(self, moment: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, moment)
