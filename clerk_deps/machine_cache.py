"""What keeps opaque machine tokens cheap: remembered verdicts and a budget of Backend API calls.

* :class:`Verdict`: Clerk's answer for one token, "this machine" or "no, because ...".
* :class:`VerdictCache`: verdicts in this process, bounded in size, each until its own
  deadline (never past the token's expiry). The hit path takes no lock.
* :class:`CallBudget` (defined in :mod:`clerk_deps.budget`, re-exported here): the token
  bucket of verification calls per process and instance, so a flood of made-up tokens cannot
  spend the instance's Backend API rate limit (or its bill).
* :class:`SharedVerdicts`: the interface of a store shared by every worker. With
  ``CLERK_REDIS_URL`` it is the Redis store (:mod:`clerk_deps.store`), so a token verified by
  one worker is not verified again by the others; another can be plugged in with
  :func:`use_shared_verdicts`. Without one, each process verifies a token once.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .budget import CallBudget  # re-exported: its home is clerk_deps.budget
from .errors import ErrorReason
from .machine_tokens import MachineAuth
from .settings import ClerkSettings

__all__ = [
    "CallBudget",
    "SharedVerdicts",
    "Verdict",
    "VerdictCache",
    "shared_verdicts_for",
    "use_shared_verdicts",
    "verdict_key",
]

_ATOMIC_DICT_OPS: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


@dataclass(frozen=True)
class Verdict:
    """Clerk's answer for a token: ``auth`` when valid, else the ``reason`` and ``message``."""

    auth: MachineAuth | None
    reason: ErrorReason = ErrorReason.TOKEN_INVALID
    message: str = ""

    def to_text(self) -> str:
        """A JSON text for a shared store (no token, no secret: just the answer)."""
        if self.auth is not None:
            return json.dumps({"auth": self.auth.model_dump(mode="json")})
        return json.dumps({"reason": self.reason.value, "message": self.message})

    @classmethod
    def from_text(cls, text: str) -> Verdict | None:
        """The verdict :meth:`to_text` wrote, or ``None`` for anything unreadable."""
        try:
            data = json.loads(text)
            if "auth" in data:
                return cls(MachineAuth.model_validate(data["auth"]))
            return cls(None, ErrorReason(data["reason"]), str(data["message"]))
        except (ValueError, TypeError, KeyError):
            return None


class VerdictCache:
    """Verdicts by token text, each until its deadline; at most ``max_size`` (oldest out)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, tuple[Verdict, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Verdict | None:
        """The verdict remembered for ``token``, if its deadline has not passed."""
        if _ATOMIC_DICT_OPS:
            entry = self._entries.get(token)
        else:  # pragma: no cover - free-threaded builds only
            with self._lock:
                entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[1] <= now:
            with self._lock:
                if self._entries.get(token) is entry:
                    del self._entries[token]
            return None
        return entry[0]

    def put(self, token: str, verdict: Verdict, until: float, now: float) -> None:
        """Remember ``verdict`` until ``until`` (nothing when that is not after ``now``)."""
        if self.max_size <= 0 or until <= now:
            return
        with self._lock:
            self._entries.pop(token, None)
            while len(self._entries) >= self.max_size:
                self._entries.popitem(last=False)
            self._entries[token] = (verdict, until)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# -- a store shared by workers ---------------------------------------------------------------


class SharedVerdicts(Protocol):
    """A key-value store with expiry shared by every worker (``clerk_deps.store.Store`` fits).

    Values are :meth:`Verdict.to_text`; keys come from :func:`verdict_key`, a hash that holds
    neither the token nor a secret. Both methods must not raise when the store is down.
    """

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl: float) -> None: ...


_shared_factory: Callable[[ClerkSettings], SharedVerdicts | None] | None = None


def use_shared_verdicts(factory: Callable[[ClerkSettings], SharedVerdicts | None] | None) -> None:
    """Share verdicts between workers: ``factory(settings)`` returns the store for an instance
    (or ``None`` for in-process only); ``None`` unplugs it. A miss in this process then asks
    the store before calling Clerk, and every fresh verdict is written to it."""
    global _shared_factory
    _shared_factory = factory


def shared_verdicts_for(settings: ClerkSettings) -> SharedVerdicts | None:
    """The store verdicts are shared through: the one plugged in with
    :func:`use_shared_verdicts`, else Redis when ``CLERK_REDIS_URL`` is set, else none (the
    in-process cache is then all there is)."""
    if _shared_factory is not None:
        return _shared_factory(settings)
    if settings.redis_url is None:
        return None
    from .store import store_for

    return store_for(settings)


def verdict_key(instance: str, token: str) -> str:
    """The shared-store key of ``token`` at ``instance`` (a fingerprint of API URL and key)."""
    return "machine:" + hashlib.sha256(f"{instance}\n{token}".encode()).hexdigest()
