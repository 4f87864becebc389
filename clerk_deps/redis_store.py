"""The Redis store: what one worker learns, every worker knows (``pip install clerk-deps[redis]``).

Revocations are written to a sorted set (scored by the time they may be forgotten) and
published on a channel. Each worker runs one listener task that subscribes to the channel,
loads the set when it (re)connects, and merges everything into its in-process revocation list,
so checking a token never waits for Redis. Other values (machine-token verdicts, email
look-ups, seen webhook ids) are plain keys with an expiry, read on a local miss.

When Redis cannot be reached, the store logs one warning, answers from the in-process store,
keeps the revocations it could not publish, and retries in the background; once Redis answers
again it publishes them, reloads what the others published meanwhile, and logs the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .revocation import Revocation, RevocationList, revocation_list
from .store import MemoryStore, Store

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ImportError as error:  # pragma: no cover - exercised by the message test only
    raise ImportError(
        "CLERK_REDIS_URL needs the redis package: pip install 'clerk-deps[redis]'"
    ) from error

__all__ = ["CHANNEL", "KEY_PREFIX", "RedisStore"]

logger = logging.getLogger("clerk_deps")

KEY_PREFIX = "clerk_deps:"
CHANNEL = KEY_PREFIX + "revocations"
REVOCATIONS_KEY = KEY_PREFIX + "revocations"
OPERATION_TIMEOUT = 1.0
"""Seconds one Redis command may take before the store treats Redis as down."""
READY_TIMEOUT = 2.0
"""Seconds the first request of a worker waits for the revocations others published."""
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def redacted_url(url: str) -> str:
    """``url`` without its password (for log lines)."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class RedisStore(Store):
    """A :class:`Store` in Redis for one URL and one event loop; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        fallback: MemoryStore,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self.fallback = fallback
        self.revocations = revocation_list() if revocations is None else revocations
        self.clock = clock
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=OPERATION_TIMEOUT,
            socket_connect_timeout=OPERATION_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._pending: list[Revocation] = []
        self._up = False
        self._warned = False
        self._closed = False

    def __repr__(self) -> str:
        state = "up" if self._up else "down or starting"
        return f"RedisStore({redacted_url(self._url)!r}, {state})"

    @property
    def is_up(self) -> bool:
        """Whether the listener is connected (``False`` while starting or during an outage)."""
        return self._up

    # -- the listener --------------------------------------------------------------------

    def start(self) -> None:
        """Start the listener task (idempotent)."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.ensure_future(self._listen())

    async def ready(self) -> None:
        if self._ready.is_set():
            return
        self.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), READY_TIMEOUT)
        self._ready.set()  # waited once: later requests never wait for Redis

    async def close(self) -> None:
        """Stop listening and close the connections."""
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_FAILURES):
                await self._listener
        with contextlib.suppress(*_FAILURES):
            await self._redis.aclose()

    async def _listen(self) -> None:
        attempt = 0
        while not self._closed:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)  # before loading: nothing falls in between
                loaded = await self._load_revocations()
                await self._flush_pending()
                self._mark_up(loaded)
                attempt = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        entry = Revocation.from_json(message["data"])
                        if entry is not None:
                            self.revocations.add(entry)
            except _FAILURES as error:
                self._mark_down(error)
            finally:
                with contextlib.suppress(*_FAILURES):
                    await pubsub.aclose()
            self._ready.set()  # a failed first load must not hold requests up
            await asyncio.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
            attempt += 1

    async def _load_revocations(self) -> int:
        now = self.clock()
        await self._redis.zremrangebyscore(REVOCATIONS_KEY, "-inf", now)
        members = await self._redis.zrangebyscore(REVOCATIONS_KEY, now, "+inf")
        entries = [e for e in (Revocation.from_json(m) for m in members) if e is not None]
        return self.revocations.add_all(entries)

    async def _flush_pending(self) -> None:
        while self._pending:
            await self._send(self._pending[0])
            self._pending.pop(0)

    def _mark_up(self, loaded: int) -> None:
        self._up = True
        self._ready.set()
        if self._warned:
            self._warned = False
            logger.warning(
                "clerk_deps: Redis at %s is reachable again; loaded %d revocation(s) "
                "published meanwhile",
                redacted_url(self._url),
                loaded,
            )

    def _mark_down(self, error: BaseException) -> None:
        self._up = False
        if not self._warned:
            self._warned = True
            logger.warning(
                "clerk_deps: Redis at %s is unreachable (%s); this worker enforces the "
                "revocations it holds and keeps verdicts, email look-ups and webhook ids in "
                "memory until Redis is back",
                redacted_url(self._url),
                type(error).__name__,
            )

    # -- revocations ---------------------------------------------------------------------

    async def publish_revocation(self, entry: Revocation) -> None:
        await self.ready()
        if not self._up:
            self._pending.append(entry)
            return
        try:
            await self._send(entry)
        except _FAILURES as error:
            self._pending.append(entry)
            self._mark_down(error)

    async def _send(self, entry: Revocation) -> None:
        data = entry.to_json()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(REVOCATIONS_KEY, {data: entry.forget_at})
            pipe.publish(CHANNEL, data)
            await pipe.execute()

    # -- keys with an expiry ---------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        await self.ready()
        if not self._up:
            return self.fallback.get_now(key)
        try:
            value = await self._redis.get(KEY_PREFIX + key)
        except _FAILURES as error:
            self._mark_down(error)
            return self.fallback.get_now(key)
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, key: str, value: str, ttl: float) -> None:
        if ttl <= 0:
            return
        await self.ready()
        if self._up:
            try:
                await self._redis.set(KEY_PREFIX + key, value, px=max(1, int(ttl * 1000)))
                return
            except _FAILURES as error:
                self._mark_down(error)
        self.fallback.put_now(key, value, ttl)

    async def add_if_absent(self, key: str, ttl: float) -> bool:
        await self.ready()
        if self._up:
            try:
                added = await self._redis.set(
                    KEY_PREFIX + key, "1", px=max(1, int(ttl * 1000)), nx=True
                )
                self.fallback.put_now(key, "1", ttl)  # remembered here too, for an outage
                return bool(added)
            except _FAILURES as error:
                self._mark_down(error)
        return self.fallback.add_if_absent_now(key, ttl)

    async def forget(self, key: str) -> None:
        await self.fallback.forget(key)
        if self._up:
            try:
                await self._redis.delete(KEY_PREFIX + key)
            except _FAILURES as error:
                self._mark_down(error)
