"""Where signing keys come from, and one shared source per configuration.

Three sources, the first configured wins (contract section 2): a static PEM (``jwt_key``), a
public key set URL (``jwks_url``, derived from the issuer by default), or the Backend API key set
(``{api_url}/v1/jwks`` with the secret key). Key set URLs are fetched and cached by
:class:`~clerk_deps.jwks.JwksKeySource` (:mod:`clerk_deps.jwks`, which describes the cache);
this module owns the :class:`KeySource` protocol, the static source, the registry of shared
sources (:func:`key_source_for`, :func:`clear_key_sources`) and :func:`warm_up`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from jose import jwk
from jose.backends.base import Key

from .errors import ClerkAuthError, ErrorReason
from .jwks import MAX_KEY_SET_BYTES, JwksKeySource, KeySetLocation
from .key_set import RSA_KEY_BITS, parse_key_set
from .settings import ClerkSettings

__all__ = [
    "MAX_KEY_SET_BYTES",
    "RSA_KEY_BITS",
    "JwksKeySource",
    "KeySource",
    "StaticKeySource",
    "clear_key_sources",
    "key_source_for",
    "key_sources_generation",
    "parse_key_set",
    "warm_up",
]

logger = logging.getLogger("clerk_deps")


class KeySource(Protocol):
    """Finds the key that verifies a token with header ``kid``."""

    @property
    def version(self) -> int:
        """Changes whenever the set of keys changes (caches of verified tokens watch it)."""

    async def get_key(self, kid: str | None) -> Key:
        """The verification key, or raise :class:`ClerkAuthError`."""

    def key_at_hand(self, kid: str) -> Key | None:
        """The key ``get_key(kid)`` would return at once, without fetching or waiting; ``None``
        when that is not certain (the caller then awaits :meth:`get_key`)."""

    async def warm_up(self) -> None:
        """Load keys ahead of the first request."""

    def trusts_cached(self) -> bool:
        """Whether verifications made with the current keys may be served from a cache now.

        ``False`` when the keys are due for a refresh: the caller then verifies afresh, which
        refreshes them. Called on every cache hit, so it must cost next to nothing.
        """


class StaticKeySource:
    """A single PEM public key; the token's ``kid`` is not consulted."""

    version = 0

    def __init__(self, pem: str) -> None:
        self._key = jwk.construct(pem, algorithm="RS256")

    async def get_key(self, kid: str | None) -> Key:
        return self._key

    def key_at_hand(self, kid: str) -> Key | None:
        return self._key

    def trusts_cached(self) -> bool:
        return True

    async def warm_up(self) -> None:
        return None


# -- one source per configuration --------------------------------------------------------

_sources: dict[tuple[Any, ...], KeySource] = {}
_sources_lock = threading.Lock()


@lru_cache(maxsize=16)
def _secret_fingerprint(secret: str) -> str:
    # Cached: hashing the secret on every request would put avoidable work on the hot path.
    return hashlib.sha256(secret.encode()).hexdigest()


def key_source_for(settings: ClerkSettings) -> KeySource:
    """The shared key source for ``settings``; raises ``auth-not-configured`` when there is none.

    Sources are shared between settings objects that point at the same keys (the cache key is
    the PEM, or the URL plus a hash of the secret key), so overriding ``get_settings`` per
    request does not refetch keys, and two Clerk instances in one process never share keys.
    """
    tuning = (settings.jwks_cache_ttl, settings.jwks_refresh_cooldown, settings.http_timeout)
    name = settings.key_source_name
    if name == "jwt_key":
        pem = settings.jwt_key or ""
        return _shared_source(("pem", pem), lambda: StaticKeySource(pem))
    if name == "jwks_url":
        location = KeySetLocation(settings.jwks_url or "")
    elif name == "secret_key" and settings.secret_key is not None:
        location = KeySetLocation(
            f"{settings.api_url}/v1/jwks", settings.secret_key.get_secret_value()
        )
    else:
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            "no signing key source is configured: set CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY), "
            "CLERK_JWT_KEY, CLERK_JWKS_URL or CLERK_SECRET_KEY",
        )
    secret = _secret_fingerprint(location.secret) if location.secret else None
    return _shared_source(
        ("jwks", location.url, secret, *tuning),
        lambda: JwksKeySource(
            location,
            ttl=settings.jwks_cache_ttl,
            cooldown=settings.jwks_refresh_cooldown,
            timeout=settings.http_timeout,
        ),
    )


def _shared_source(lookup: tuple[Any, ...], build: Callable[[], KeySource]) -> KeySource:
    """The registered source for ``lookup``, built once (double-checked under the lock)."""
    source = _sources.get(lookup)
    if source is None:
        with _sources_lock:
            source = _sources.get(lookup)
            if source is None:
                source = _sources[lookup] = build()
    return source


_generation = 0


def clear_key_sources() -> None:
    """Forget every cached key source (tests; a process that reloads configuration)."""
    global _generation
    with _sources_lock:
        _sources.clear()
        _generation += 1


def key_sources_generation() -> int:
    """Changes whenever :func:`clear_key_sources` runs, so that whatever remembers a key
    source per settings object can tell that it must look it up again."""
    return _generation


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
