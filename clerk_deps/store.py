"""What a fleet of workers shares: revocations, machine-token verdicts, email look-ups and
the ids of webhook deliveries already accepted.

Without ``CLERK_REDIS_URL`` everything lives in this process (:class:`MemoryStore`). With it,
:class:`~clerk_deps.redis_store.RedisStore` shares it through Redis: revocations are published
to every worker, which keeps them in its in-process :class:`~clerk_deps.revocation.RevocationList`
(no Redis round trip on the request path), and the other values are read from Redis on a
local miss. When Redis is unreachable, a worker logs a warning, carries on with what it holds
in memory, and catches up when Redis is back.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from .revocation import Kind, Revocation, revocation_list
from .settings import ClerkSettings

__all__ = [
    "MemoryStore",
    "Store",
    "clear_stores",
    "memory_store",
    "publish_revocation",
    "revoke",
    "store_for",
]


class Store(ABC):
    """A small key-value store with expiry, plus revocation publishing.

    Keys are namespaced by the caller (``"machine:<hash>"``, ``"email:<user>"``, ...). Every
    method is safe to call while the backend is down: reads then miss, writes are kept locally.
    """

    @abstractmethod
    async def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""

    @abstractmethod
    async def put(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""

    @abstractmethod
    async def add_if_absent(self, key: str, ttl: float) -> bool:
        """Mark ``key`` for ``ttl`` seconds; ``True`` when it was not marked already."""

    async def forget(self, key: str) -> None:
        """Remove ``key`` (a no-op when absent)."""
        return None

    async def publish_revocation(self, entry: Revocation) -> None:
        """Tell every worker about ``entry`` (the in-process list already has it)."""
        return None

    async def ready(self) -> None:
        """Return once the revocations other workers published are loaded (or loading failed)."""
        return None


class MemoryStore(Store):
    """The in-process store: a bounded, thread-safe map with expiry (least recently set out)."""

    def __init__(self, *, max_size: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.max_size = max_size
        self.clock = clock
        self._values: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.RLock()  # re-entrant: add_if_absent_now calls put_now

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"MemoryStore(entries={len(self._values)})"

    def get_now(self, key: str) -> str | None:
        """:meth:`get` without awaiting (the in-process store never waits)."""
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= self.clock():
            with self._lock:
                self._values.pop(key, None)
            return None
        return found[0]

    def put_now(self, key: str, value: str, ttl: float) -> None:
        """:meth:`put` without awaiting."""
        if ttl <= 0:
            return
        with self._lock:
            self._values.pop(key, None)
            while len(self._values) >= self.max_size:
                self._values.popitem(last=False)
            self._values[key] = (value, self.clock() + ttl)

    def add_if_absent_now(self, key: str, ttl: float) -> bool:
        """:meth:`add_if_absent` without awaiting."""
        with self._lock:
            if self.get_now(key) is not None:
                return False
            self.put_now(key, "1", ttl)
            return True

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    async def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    async def get(self, key: str) -> str | None:
        return self.get_now(key)

    async def put(self, key: str, value: str, ttl: float) -> None:
        self.put_now(key, value, ttl)

    async def add_if_absent(self, key: str, ttl: float) -> bool:
        return self.add_if_absent_now(key, ttl)


_memory = MemoryStore()


def memory_store() -> MemoryStore:
    """This process's in-process store (also the fallback of a Redis store that is down)."""
    return _memory


# Redis stores: one per URL and event loop (a Redis connection belongs to the loop that made it).
_redis_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Store]] = (
    weakref.WeakKeyDictionary()
)
_redis_lock = threading.Lock()


def store_for(settings: ClerkSettings) -> Store:
    """The store ``settings`` configure: Redis when ``redis_url`` is set and this runs inside
    an event loop, else the in-process store."""
    if settings.redis_url is None:
        return _memory
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _memory
    url = settings.redis_url.get_secret_value()
    per_loop = _redis_stores.get(loop)
    store = per_loop.get(url) if per_loop is not None else None
    if store is not None:
        return store
    from .redis_store import RedisStore  # the optional extra, imported only when configured

    with _redis_lock:
        per_loop = _redis_stores.setdefault(loop, {})
        store = per_loop.get(url)
        if store is None:
            store = per_loop[url] = RedisStore(url, fallback=_memory)
        return store


async def close_stores() -> None:
    """Stop the Redis stores of the running loop (their listeners and connections)."""
    from .redis_store import RedisStore

    per_loop = _redis_stores.pop(asyncio.get_running_loop(), {})
    for store in per_loop.values():
        if isinstance(store, RedisStore):
            await store.close()


def clear_stores() -> None:
    """Forget every store and what the in-process one holds (tests)."""
    _memory.clear()
    with _redis_lock:
        _redis_stores.clear()


async def publish_revocation(entry: Revocation, settings: ClerkSettings) -> None:
    """Send ``entry`` to every worker (a no-op without Redis)."""
    await store_for(settings).publish_revocation(entry)


async def revoke(kind: Kind, ident: str, settings: ClerkSettings) -> Revocation:
    """Revoke a session (``kind="session"``) or every session of a user (``"user"``) in this
    process at once, then tell the other workers."""
    entry = revocation_list().revoke(kind, ident)
    await publish_revocation(entry, settings)
    return entry
