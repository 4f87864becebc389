"""Remembered verifications: a browser sends the same session token for up to 60 seconds.

A token that passed every check is kept, keyed by its exact text, until it expires, so the
next request with it costs a dictionary lookup instead of an RSA verification. Only tokens
that passed are stored (a flood of garbage costs no memory), the cache is bounded (least
recently used out), every hit re-checks ``exp`` and ``nbf`` against the clock, and the whole
cache is emptied when the key set behind it changes. Hits are served only while the key
source trusts its keys (:meth:`KeySource.trusts_cached`): once the key set is due for a
refresh, the next request verifies afresh, which refreshes it, so a key Clerk has dropped
stops serving cached verifications as it stops serving fresh ones.
"""

from __future__ import annotations

import math
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

from .claim_checks import ClaimRules
from .claims import ClerkClaims
from .keys import KeySource, key_source_for, key_sources_generation
from .settings import ClerkSettings

__all__ = ["Prepared", "TokenCache", "prepared_for", "selected_for", "token_cache_for"]

# Without a GIL (free-threaded builds), single OrderedDict operations are not guaranteed to be
# atomic, so reads take the lock there too.
_ATOMIC_DICT_OPS: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


class TokenCache:
    """A bounded, thread-safe LRU of verified tokens for one verification scope."""

    def __init__(self, max_size: int, leeway: float) -> None:
        self.max_size = max_size
        self.leeway = leeway
        # token -> (claims, exp + leeway, nbf - leeway): the bounds from the token's exact
        # (possibly fractional) NumericDates, so a hit is judged as a fresh verification is.
        self._entries: OrderedDict[str, tuple[ClerkClaims, float, float]] = OrderedDict()
        self._key_version: int | None = None
        self._lock = threading.RLock()  # re-entrant: a locked read may flush or expire

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float, key_version: int) -> ClerkClaims | None:
        """The claims of ``token`` if it was verified and is still within its lifetime."""
        if not _ATOMIC_DICT_OPS:
            with self._lock:
                return self._lookup(token, now, key_version)
        return self._lookup(token, now, key_version)

    def _lookup(self, token: str, now: float, key_version: int) -> ClerkClaims | None:
        # The hit path takes no lock (half the cost of a hit): each OrderedDict operation here
        # is atomic under the GIL, and every change that makes entries invalid (the flush on
        # new keys, expiry) is made under the lock. A reader that saw the old key version
        # before a concurrent flush is ordered before that flush, as if it had locked first.
        if key_version != self._key_version:
            self._flush(key_version)
            return None
        entry = self._entries.get(token)
        if entry is None:
            return None
        claims, expires_at, active_from = entry
        if expires_at <= now:
            with self._lock:
                self._entries.pop(token, None)
            return None
        if active_from > now:
            return None
        # not contextlib.suppress: a context manager would cost as much as the lookup itself
        try:  # noqa: SIM105
            self._entries.move_to_end(token)
        except KeyError:  # evicted by another thread since the lookup; still a valid answer
            pass
        return claims

    def put(
        self,
        token: str,
        claims: ClerkClaims,
        key_version: int,
        *,
        exp: float | None = None,
        nbf: float | None = None,
    ) -> None:
        """Remember a token that passed every check under keys of ``key_version``.

        ``exp`` and ``nbf`` are the token's exact NumericDates (``claims`` keeps whole
        seconds); they default to those of ``claims``.
        """
        exp = claims.exp if exp is None else exp
        nbf = claims.nbf if nbf is None else nbf
        active_from = -math.inf if nbf is None else nbf - self.leeway
        entry = (claims, exp + self.leeway, active_from)
        with self._lock:
            if key_version != self._key_version:
                self._entries.clear()
                self._key_version = key_version
            entries = self._entries
            if token in entries:
                entries.move_to_end(token)
            else:
                # evict first, so the size never exceeds the bound, not even for an instant
                while entries and len(entries) >= self.max_size:
                    entries.popitem(last=False)
            entries[token] = entry

    def _flush(self, key_version: int) -> None:
        with self._lock:
            if key_version != self._key_version:
                self._entries.clear()
                self._key_version = key_version

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# One cache per key source and verification policy: settings objects that would verify a
# token the same way share it; any difference (issuer, audience, azp, flags) separates them.
# Held weakly by the key source, so forgetting a source (clear_key_sources) drops its caches.
# Keyed by id() with a weak reference that removes the entry when the source is collected:
# a lookup is one dict access, where a WeakKeyDictionary builds a new weak reference per call.
_caches: dict[int, tuple[weakref.ref[KeySource], dict[Hashable, TokenCache]]] = {}
_caches_lock = threading.Lock()


def _forget_source(source_id: int, ref: weakref.ref[KeySource]) -> None:
    # Runs while the source is being freed, possibly from the garbage collector inside a
    # section that holds _caches_lock, so it must not take that lock. No other object can
    # have this id until the source is freed, so the entry is ours or absent.
    entry = _caches.get(source_id)
    if entry is not None and entry[0] is ref:
        _caches.pop(source_id, None)


def token_cache_for(
    source: KeySource, policy: Hashable, max_size: int, leeway: float
) -> TokenCache | None:
    """The shared cache of ``source`` under ``policy``; ``None`` when caching is off."""
    if max_size <= 0:
        return None
    entry = _caches.get(id(source))
    if entry is not None and entry[0]() is source:
        cache = entry[1].get(policy)
        if cache is not None:
            return cache
    with _caches_lock:
        entry = _caches.get(id(source))
        if entry is None or entry[0]() is not source:
            source_id = id(source)
            ref = weakref.ref(source, lambda dead: _forget_source(source_id, dead))
            entry = _caches[source_id] = (ref, {})
        per_policy = entry[1]
        cache = per_policy.get(policy)
        if cache is None:
            cache = per_policy[policy] = TokenCache(max_size, leeway)
        return cache


# What each settings object selects, looked up once: ClerkSettings are immutable, so the key
# source and the token cache a settings object selects never change (until
# clear_key_sources()). Keyed by id, checked by weak reference; an entry leaves with its object.
_selected: dict[int, tuple[weakref.ref[ClerkSettings], int, Prepared]] = {}


def _forget_settings(settings_id: int, ref: weakref.ref[ClerkSettings]) -> None:
    entry = _selected.get(settings_id)
    if entry is not None and entry[0] is ref:
        _selected.pop(settings_id, None)


class Prepared(NamedTuple):
    """What verifying under one settings object needs, looked up once."""

    source: KeySource
    cache: TokenCache | None
    rules: ClaimRules


def prepared_for(settings: ClerkSettings) -> Prepared:
    """The key source, verified-token cache and claim rules of ``settings``, looked up now;
    raises ``auth-not-configured`` when no key source is configured."""
    source = key_source_for(settings)
    cache = token_cache_for(
        source, settings.verification_policy(), settings.token_cache_size, settings.leeway
    )
    return Prepared(source, cache, ClaimRules.of(settings))


def selected_for(settings: ClerkSettings) -> Prepared:
    """:func:`prepared_for`, remembered per settings object (and key-source generation);
    raises ``auth-not-configured`` when no key source is configured (and then remembers
    nothing)."""
    entry = _selected.get(id(settings))
    if entry is not None and entry[0]() is settings and entry[1] == key_sources_generation():
        return entry[2]
    generation = key_sources_generation()
    prepared = prepared_for(settings)
    settings_id = id(settings)
    ref = weakref.ref(settings, lambda dead: _forget_settings(settings_id, dead))
    _selected[settings_id] = (ref, generation, prepared)
    return prepared
