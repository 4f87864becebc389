"""Remembered verifications: a browser sends the same session token for up to 60 seconds.

A token that passed every check is kept, keyed by its exact text, until it expires, so the
next request with it costs a dictionary lookup instead of an RSA verification. Only tokens
that passed are stored (a flood of garbage costs no memory), the cache is bounded (least
recently used out), every hit re-checks ``exp`` and ``nbf`` against the clock, and the whole
cache is emptied when the key set behind it changes.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable

from .claims import ClerkClaims
from .keys import KeySource

__all__ = ["TokenCache", "token_cache_for"]


class TokenCache:
    """A bounded, thread-safe LRU of verified tokens for one verification scope."""

    def __init__(self, max_size: int, leeway: float) -> None:
        self.max_size = max_size
        self.leeway = leeway
        self._entries: OrderedDict[str, ClerkClaims] = OrderedDict()
        self._key_version: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float, key_version: int) -> ClerkClaims | None:
        """The claims of ``token`` if it was verified and is still within its lifetime."""
        with self._lock:
            if key_version != self._key_version:
                self._entries.clear()
                self._key_version = key_version
                return None
            claims = self._entries.get(token)
            if claims is None:
                return None
            if claims.exp + self.leeway <= now:
                del self._entries[token]
                return None
            if claims.nbf is not None and claims.nbf - self.leeway > now:
                return None
            self._entries.move_to_end(token)
            return claims

    def put(self, token: str, claims: ClerkClaims, key_version: int) -> None:
        """Remember a token that passed every check under keys of ``key_version``."""
        with self._lock:
            if key_version != self._key_version:
                self._entries.clear()
                self._key_version = key_version
            self._entries[token] = claims
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# One cache per key source and verification policy: settings objects that would verify a
# token the same way share it; any difference (issuer, audience, azp, flags) separates them.
# Keyed weakly by the key source, so forgetting a source (clear_key_sources) drops its caches.
_caches: weakref.WeakKeyDictionary[KeySource, dict[Hashable, TokenCache]] = (
    weakref.WeakKeyDictionary()
)
_caches_lock = threading.Lock()


def token_cache_for(
    source: KeySource, policy: Hashable, max_size: int, leeway: float
) -> TokenCache | None:
    """The shared cache of ``source`` under ``policy``; ``None`` when caching is off."""
    if max_size <= 0:
        return None
    per_source = _caches.get(source)
    if per_source is not None:
        cache = per_source.get(policy)
        if cache is not None:
            return cache
    with _caches_lock:
        per_source = _caches.setdefault(source, {})
        cache = per_source.get(policy)
        if cache is None:
            cache = per_source[policy] = TokenCache(max_size, leeway)
        return cache
