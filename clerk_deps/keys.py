"""Where signing keys come from, and how they are cached.

Three sources, the first configured wins (contract section 2): a static PEM (``jwt_key``), a
public key set URL (``jwks_url``, derived from the issuer by default), or the Backend API key set
(``{api_url}/v1/jwks`` with the secret key).

The key-set cache is built for production failure modes:

* a fresh cache answers without a lock or an ``await``;
* a stale or empty cache is refreshed by exactly one task while the others wait for it
  (single flight), over a shared async client, never blocking the event loop;
* an unknown ``kid`` refetches at most once per ``jwks_refresh_cooldown``; unknown kids are
  not remembered, so a flood of random kids costs neither fetches nor memory;
* a failed refresh keeps the keys already cached, logs the cause, and waits the cooldown
  before the next attempt; only with nothing cached is the answer 503 ``jwk-failed-to-load``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JOSEError

from ._http import shared_client
from .errors import ClerkAuthError, ErrorReason
from .settings import ClerkSettings

__all__ = ["JwksKeySource", "KeySource", "StaticKeySource", "key_source_for", "warm_up"]

logger = logging.getLogger("clerk_deps")

Clock = Callable[[], float]


class KeySource(Protocol):
    """Finds the key that verifies a token with header ``kid``."""

    @property
    def version(self) -> int:
        """Changes whenever the set of keys changes (caches of verified tokens watch it)."""

    async def get_key(self, kid: str | None) -> Key:
        """The verification key, or raise :class:`ClerkAuthError`."""

    async def warm_up(self) -> None:
        """Load keys ahead of the first request."""


class StaticKeySource:
    """A single PEM public key; the token's ``kid`` is not consulted."""

    version = 0

    def __init__(self, pem: str) -> None:
        self._key = jwk.construct(pem, algorithm="RS256")

    async def get_key(self, kid: str | None) -> Key:
        return self._key

    async def warm_up(self) -> None:
        return None


class _FetchError(Exception):
    """A key-set fetch failed; the message names the cause and never a secret."""


@dataclass(frozen=True)
class _Location:
    url: str
    secret: str | None = None  # Bearer token for the Backend API key set

    def describe(self) -> str:
        return f"{self.url} (Backend API key set)" if self.secret else self.url


class JwksKeySource:
    """Keys from a JSON Web Key Set over HTTP, cached as described in the module docstring."""

    def __init__(
        self,
        location: _Location,
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
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._last_failed = False
        self._version = 0
        self._state_lock = threading.Lock()
        self._flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self.fetch_count = 0

    @property
    def version(self) -> int:
        return self._version

    @property
    def url(self) -> str:
        return self._location.url

    def kids(self) -> list[str]:
        """The ``kid`` of every cached key."""
        return list(self._keys)

    async def get_key(self, kid: str | None) -> Key:
        if not kid:
            raise ClerkAuthError(
                ErrorReason.JWK_KID_MISMATCH,
                "token header has no 'kid', so no key of the key set can be chosen",
            )
        now = self.clock()
        key = self._keys.get(kid)
        if key is not None and now < self._fresh_until:
            return key
        stale = now >= self._fresh_until
        if self._may_attempt(now, unknown_kid=not stale):
            await self._refresh()
        if not self._keys:
            raise self._unavailable()
        key = self._keys.get(kid)
        if key is None:
            raise ClerkAuthError(
                ErrorReason.JWK_KID_MISMATCH,
                f"no key with this token's kid in the key set at {self._location.describe()}; "
                "if Clerk keys were rotated, the new key set is picked up within "
                "CLERK_JWKS_REFRESH_COOLDOWN seconds",
            )
        return key

    async def warm_up(self) -> None:
        await self._refresh()
        if not self._keys:
            raise self._unavailable()

    def _may_attempt(self, now: float, *, unknown_kid: bool) -> bool:
        if self._in_flight():
            return True
        # After a failure, and for unknown kids, fetches are spaced by the cooldown.
        throttled = self._last_failed or unknown_kid
        return not throttled or now - self._last_attempt >= self.cooldown

    def _in_flight(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            return False
        task = self._flights.get(loop)
        return task is not None and not task.done()

    async def _refresh(self) -> None:
        """Join the running fetch of this loop, or start one."""
        loop = asyncio.get_running_loop()
        task = self._flights.get(loop)
        if task is None or task.done():
            task = loop.create_task(self._fetch_and_store())
            self._flights[loop] = task
        # shield: a waiter that is cancelled (client went away) does not cancel the fetch
        await asyncio.shield(task)

    async def _fetch_and_store(self) -> None:
        with self._state_lock:
            self._last_attempt = self.clock()
            self.fetch_count += 1
        try:
            keys = await self._fetch()
        except _FetchError as error:
            with self._state_lock:
                self._last_failed = True
            kept = f"; keeping {len(self._keys)} cached key(s)" if self._keys else ""
            logger.warning("clerk_deps: could not refresh signing keys: %s%s", error, kept)
            return
        with self._state_lock:
            if set(keys) != set(self._keys) or any(
                keys[k].to_dict() != self._keys[k].to_dict() for k in keys
            ):
                self._version += 1
            self._keys = keys
            self._fresh_until = self.clock() + self.ttl
            self._last_failed = False

    async def _fetch(self) -> dict[str, Key]:
        location = self._location
        headers = {"Accept": "application/json"}
        if location.secret:
            headers["Authorization"] = f"Bearer {location.secret}"
        try:
            response = await shared_client().get(
                location.url, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise _FetchError(
                f"{location.describe()} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise _FetchError(
                f"{location.describe()} is unreachable ({type(error).__name__})"
            ) from None
        if response.status_code != 200:
            raise _FetchError(f"{location.describe()} answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise _FetchError(f"{location.describe()} did not answer JSON") from None
        keys = parse_key_set(document)
        if not keys:
            raise _FetchError(f"{location.describe()} holds no usable RS256 signing key")
        return keys

    def _unavailable(self) -> ClerkAuthError:
        wait = self.cooldown - (self.clock() - self._last_attempt)
        return ClerkAuthError(
            ErrorReason.JWK_FAILED_TO_LOAD,
            f"signing keys could not be loaded from {self._location.describe()}; "
            "see the server log for the cause",
            retry_after=max(1, math.ceil(wait)),
        )


def parse_key_set(document: Any) -> dict[str, Key]:
    """The RSA signing keys with a ``kid`` in a JWKS document, as python-jose key objects."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return {}
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[kid] = jwk.construct(entry, algorithm="RS256")
        except (JOSEError, ValueError, TypeError, KeyError):
            continue
    return keys


# -- one source per configuration --------------------------------------------------------

_sources: dict[tuple[Any, ...], KeySource] = {}
_sources_lock = threading.Lock()


def _secret_fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_source_for(settings: ClerkSettings) -> KeySource:
    """The shared key source for ``settings``; raises ``auth-not-configured`` when there is none.

    Sources are shared between settings objects that point at the same keys (the cache key is
    the PEM, or the URL plus a hash of the secret key), so overriding ``get_settings`` per
    request does not refetch keys, and two Clerk instances in one process never share keys.
    """
    name = settings.key_source_name
    if name == "jwt_key":
        assert settings.jwt_key is not None
        cache_key: tuple[Any, ...] = ("pem", settings.jwt_key)
    elif name == "jwks_url":
        assert settings.jwks_url is not None
        cache_key = ("jwks", _Location(settings.jwks_url))
    elif name == "secret_key":
        assert settings.secret_key is not None
        secret = settings.secret_key.get_secret_value()
        cache_key = ("jwks", _Location(f"{settings.api_url}/v1/jwks", secret))
    else:
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            "no signing key source is configured: set CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY), "
            "CLERK_JWT_KEY, CLERK_JWKS_URL or CLERK_SECRET_KEY",
        )
    tuning = (settings.jwks_cache_ttl, settings.jwks_refresh_cooldown, settings.http_timeout)
    lookup = (*cache_key[:1], _fingerprint_key(cache_key), *tuning)
    source = _sources.get(lookup)
    if source is None:
        with _sources_lock:
            source = _sources.get(lookup)
            if source is None:
                source = _new_source(cache_key, settings)
                _sources[lookup] = source
    return source


def _fingerprint_key(cache_key: tuple[Any, ...]) -> Any:
    kind, value = cache_key
    if kind == "pem":
        return value
    location: _Location = value
    return (location.url, _secret_fingerprint(location.secret) if location.secret else None)


def _new_source(cache_key: tuple[Any, ...], settings: ClerkSettings) -> KeySource:
    kind, value = cache_key
    if kind == "pem":
        return StaticKeySource(value)
    return JwksKeySource(
        value,
        ttl=settings.jwks_cache_ttl,
        cooldown=settings.jwks_refresh_cooldown,
        timeout=settings.http_timeout,
    )


def clear_key_sources() -> None:
    """Forget every cached key source (tests; a process that reloads configuration)."""
    with _sources_lock:
        _sources.clear()


async def warm_up(settings: ClerkSettings | None = None) -> None:
    """Load the signing keys before the first request.

    A configuration error raises (start-up should stop with a clear message); a key server
    that cannot be reached only logs a warning: requests retry once the cooldown has passed.
    """
    if settings is None:
        from .settings import get_settings

        settings = get_settings()
    source = key_source_for(settings)
    try:
        await source.warm_up()
    except ClerkAuthError as error:
        if error.reason is not ErrorReason.JWK_FAILED_TO_LOAD:  # pragma: no cover - defensive
            raise
        logger.warning("clerk_deps: warm-up could not load signing keys: %s", error.message)
