"""Keys from a JSON Web Key Set URL: ``JwksKeySource``, its fetch and its cache.

Used for the public key set URL (``jwks_url``) and the Backend API key set (``{api_url}/v1/jwks``
with the secret key); :mod:`clerk_deps.keys` picks the source and shares it per configuration,
and :mod:`clerk_deps.key_set` reads the document. The key-set cache is built for production
failure modes:

The key-set cache is built for production failure modes:

* a fresh cache answers without a lock or an ``await``;
* a stale or empty cache is refreshed by exactly one task per event loop while the others
  wait for it (single flight), over a shared async client, never blocking the event loop; the
  whole fetch, not just each read, is bounded by ``http_timeout``, and its body by
  :data:`MAX_KEY_SET_BYTES`;
* an unknown ``kid`` refetches at most once per ``jwks_refresh_cooldown``; unknown kids are
  not remembered, so a flood of random kids costs neither fetches nor memory;
* a failed refresh keeps the keys already cached, logs the cause (never the secret key), and
  waits the cooldown before the next attempt; while the key server keeps failing, a request
  whose key is cached is answered at once and the retry runs in the background, so an outage
  at Clerk costs no latency; only with nothing usable cached is the answer 503
  ``jwk-failed-to-load`` with ``Retry-After``;
* a successful fetch replaces the cached set, so a key Clerk stops publishing is revoked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from jose.backends.base import Key

from ._http import shared_client
from .errors import ClerkAuthError, ErrorReason
from .key_set import parse_key_set

__all__ = ["MAX_KEY_SET_BYTES", "JwksKeySource", "KeySetLocation"]

logger = logging.getLogger("clerk_deps")

Clock = Callable[[], float]


class _FetchError(Exception):
    """A key-set fetch failed; the message names the cause and never a secret."""


# A Clerk key set is about 1 KiB; a body far larger means a misconfigured URL, and reading it
# whole would cost memory and event-loop time.
MAX_KEY_SET_BYTES = 256 * 1024
# Rotated-out kids remembered for a precise message; Clerk rotates rarely, so a few suffice.
_MAX_RETIRED_KIDS = 16


@dataclass(frozen=True)
class KeySetLocation:
    """Where a key set is fetched from, and the secret key that reads it (Backend API)."""

    url: str
    # Bearer token for the Backend API key set; kept out of repr (tracebacks, debuggers, Sentry).
    secret: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        return f"{self.url} (Backend API key set)" if self.secret else self.url


class JwksKeySource:
    """Keys from a JSON Web Key Set over HTTP, cached as described in the module docstring.

    ``clock`` (monotonic seconds) may be replaced, e.g. by tests that move time forward.
    ``fetch_count`` counts the fetches started.
    """

    def __init__(
        self,
        location: KeySetLocation,
        *,
        ttl: float,
        cooldown: float,
        timeout: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._location = location
        self.ttl = ttl
        self.cooldown = cooldown
        self.timeout = timeout
        self.clock = clock
        self._keys: dict[str, Key] = {}
        self._retired: dict[str, None] = {}  # kids a refresh dropped, oldest first
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._last_failed = False
        self._version = 0
        self._state_lock = threading.Lock()
        # The fetch in progress, per event loop; an entry is removed when its fetch ends, so a
        # closed loop is never kept alive by this dictionary.
        self._flights: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self.fetch_count = 0

    def __repr__(self) -> str:
        return f"JwksKeySource({self._location.describe()!r}, keys={len(self._keys)})"

    @property
    def version(self) -> int:
        return self._version

    @property
    def url(self) -> str:
        return self._location.url

    def kids(self) -> list[str]:
        """The ``kid`` of every cached key."""
        return list(self._keys)

    def trusts_cached(self) -> bool:
        # Inside the TTL the keys are current. Past it, a cache hit must not outlive a key
        # Clerk has dropped, so the caller verifies afresh and its get_key refreshes the set
        # (one fetch per TTL, shared). While the key server is failing, known keys keep
        # serving (as get_key does) and a background retry starts once per cooldown.
        now = self.clock()
        if now < self._fresh_until:
            return True
        if self._last_failed:
            self._refresh_in_background(now)
            return True
        return False

    def key_at_hand(self, kid: str) -> Key | None:
        # get_key's first case: a known kid while the set is fresh.
        if self.clock() < self._fresh_until:
            return self._keys.get(kid)
        return None

    async def get_key(self, kid: str | None) -> Key:
        if not kid:
            raise ClerkAuthError(
                ErrorReason.JWK_KID_MISMATCH,
                "token header has no 'kid', so no key of the key set can be chosen",
            )
        now = self.clock()
        fresh = now < self._fresh_until
        key = self._keys.get(kid)
        if key is not None and (fresh or self._last_failed):
            if not fresh:
                # The key server is failing: a known key keeps serving at once, and the next
                # attempt runs in the background (once per cooldown) instead of holding requests.
                self._refresh_in_background(now)
            return key
        # Cold cache, stale cache or unknown kid: wait for one fetch shared by all waiters. After
        # a failure, and for an unknown kid while any keys are cached (even stale ones, e.g.
        # with CLERK_JWKS_CACHE_TTL=0), fetches are spaced by the cooldown, so a flood of random
        # kids costs at most one fetch per cooldown.
        throttled = self._last_failed or (key is None and bool(self._keys))
        if self._in_flight() or not throttled or self._cooled_down(now):
            await self._refresh()
        if not self._keys:
            raise self._unavailable()
        key = self._keys.get(kid)
        if key is None:
            raise ClerkAuthError(ErrorReason.JWK_KID_MISMATCH, self._unknown_kid_message(kid))
        return key

    def _unknown_kid_message(self, kid: str) -> str:
        where = self._location.describe()
        if kid in self._retired:
            return (
                f"the key that signed this token has been removed from the key set at {where} "
                "(Clerk's signing keys were rotated), so the token can no longer be "
                "verified; the client must fetch a fresh session token (sign in again if "
                "the session started before the rotation)"
            )
        return (
            f"no key with this token's kid in the key set at {where}: the token comes from "
            "another Clerk instance, or was signed by a key that has since been rotated out "
            "(then the client must fetch a fresh session token); if Clerk keys were just "
            "rotated, the new key set is picked up within CLERK_JWKS_REFRESH_COOLDOWN seconds"
        )

    async def warm_up(self) -> None:
        await self._refresh()
        if not self._keys:
            raise self._unavailable()

    async def wait_for_refresh(self) -> None:
        """Wait for this loop's fetch in progress, if any (e.g. one started in the background)."""
        task = self._flights.get(asyncio.get_running_loop())
        if task is not None:
            await asyncio.shield(task)

    def _cooled_down(self, now: float) -> bool:
        return now - self._last_attempt >= self.cooldown

    def _in_flight(self) -> bool:
        task = self._flights.get(asyncio.get_running_loop())
        return task is not None and not task.done()

    def _start_flight(self) -> asyncio.Task[None]:
        """This loop's fetch in progress, or a new one."""
        loop = asyncio.get_running_loop()
        task = self._flights.get(loop)
        if task is None or task.done():
            for other in [other for other in list(self._flights) if other.is_closed()]:
                self._flights.pop(other, None)  # a loop closed mid-fetch: let it be collected
            task = loop.create_task(self._fetch_and_store())
            self._flights[loop] = task
            task.add_done_callback(lambda done: self._forget_flight(loop, done))
        return task

    def _forget_flight(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        if self._flights.get(loop) is task:
            del self._flights[loop]

    async def _refresh(self) -> None:
        """Join the running fetch of this loop, or start one, and wait for it."""
        # shield: a waiter that is cancelled (client went away) does not cancel the fetch
        await asyncio.shield(self._start_flight())

    def _refresh_in_background(self, now: float) -> None:
        if not self._in_flight() and self._cooled_down(now):
            self._start_flight()

    async def _fetch_and_store(self) -> None:
        with self._state_lock:
            self._last_attempt = self.clock()
            self.fetch_count += 1
        try:
            # httpx's timeout applies to each connect/read; this bounds the whole fetch, so a
            # server that drips its answer cannot hold the single flight (and its waiters).
            keys = await asyncio.wait_for(self._fetch(), self.timeout)
        except Exception as error:
            self._record_failure(error)
            return
        with self._state_lock:
            if set(keys) != set(self._keys) or any(
                keys[k].to_dict() != self._keys[k].to_dict() for k in keys
            ):
                self._version += 1
            # The fetched set replaces the cache: a key Clerk no longer publishes is revoked,
            # and remembered as rotated out (bounded) to tell its tokens' clients what to do.
            for kid in self._keys.keys() - keys.keys():
                self._retired[kid] = None
            for kid in keys.keys() & self._retired.keys():
                del self._retired[kid]
            while len(self._retired) > _MAX_RETIRED_KIDS:
                del self._retired[next(iter(self._retired))]
            self._keys = keys
            self._fresh_until = self.clock() + self.ttl
            self._last_failed = False

    def _record_failure(self, error: Exception) -> None:
        with self._state_lock:
            self._last_failed = True
        kept = f"; keeping {len(self._keys)} cached key(s)" if self._keys else ""
        retry = f"; next attempt in {self.cooldown:g} s or later"
        where = self._location.describe()
        if isinstance(error, _FetchError):
            cause = str(error)
        elif isinstance(error, asyncio.TimeoutError):
            cause = f"{where} did not send its key set within {self.timeout:g} s"
        else:  # a bug or an exotic failure: still a failed refresh, never a 500 for everyone
            cause = f"unexpected {type(error).__name__} while loading {where}"
            logger.debug("clerk_deps: key set fetch failed", exc_info=error)
        logger.warning("clerk_deps: could not refresh signing keys: %s%s%s", cause, kept, retry)

    async def _fetch(self) -> dict[str, Key]:
        location = self._location
        # Ask for an uncompressed body (a key set is ~1 KiB); one compressed anyway is
        # decompressed under the same size cap, never expanded whole (a gzip bomb).
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if location.secret:
            headers["Authorization"] = f"Bearer {location.secret}"
        try:
            async with shared_client().stream(
                "GET", location.url, headers=headers, timeout=self.timeout
            ) as response:
                if response.status_code != 200:
                    raise _FetchError(f"{location.describe()} answered HTTP {response.status_code}")
                body = await _read_at_most(response, MAX_KEY_SET_BYTES, location.describe())
        except httpx.TimeoutException:
            raise _FetchError(
                f"{location.describe()} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise _FetchError(
                f"{location.describe()} is unreachable ({type(error).__name__})"
            ) from None
        if body is None:
            raise _FetchError(
                f"{location.describe()} sent more than {MAX_KEY_SET_BYTES // 1024} KiB, "
                "which is not a Clerk key set"
            )
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise _FetchError(f"{location.describe()} did not answer JSON") from None
        keys = parse_key_set(document)
        if not keys:
            raise _FetchError(f"{location.describe()} holds no usable RS256 signing key")
        return keys

    def _unavailable(self) -> ClerkAuthError:
        wait = self.cooldown - (self.clock() - self._last_attempt)  # -inf before any attempt
        return ClerkAuthError(
            ErrorReason.JWK_FAILED_TO_LOAD,
            f"signing keys could not be loaded from {self._location.describe()}; "
            "see the server log for the cause",
            retry_after=math.ceil(max(1.0, wait)),
        )


# Content-Encoding values decoded here, with the zlib window bits that read them.
_ZLIB_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 15}


async def _read_at_most(response: httpx.Response, limit: int, where: str) -> bytes | None:
    """The decoded body, or ``None`` as soon as it exceeds ``limit`` bytes.

    The raw bytes are read and decompressed here, never producing more than ``limit + 1``
    bytes of output (httpx's own decoder expands each chunk whole: a 100 KiB gzip body can
    become 100 MiB in one step). Encodings other than gzip and deflate are refused.
    """
    if response.is_stream_consumed:  # already read by the transport (e.g. httpx.MockTransport)
        return response.content if len(response.content) <= limit else None
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    decoder = None
    if encoding not in ("", "identity"):
        wbits = _ZLIB_ENCODINGS.get(encoding)
        if wbits is None:
            raise _FetchError(f"{where} sent its key set with unsupported encoding {encoding!r}")
        decoder = zlib.decompressobj(wbits)
    body = bytearray()
    async for chunk in response.aiter_raw():
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, limit + 1 - len(body))
            except zlib.error:
                raise _FetchError(f"{where} sent a corrupt {encoding} body") from None
            if decoder.unconsumed_tail:  # output stopped at the cap: the body is larger
                return None
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
