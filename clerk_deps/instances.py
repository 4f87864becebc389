"""The Clerk instances a ``ClerkAuth`` trusts, and how a token finds its instance.

An :class:`Instance` holds one ``ClerkSettings`` and what verifying under it needs (key source,
token cache, session cookie names), looked up once instead of on every request. With several
instances, an :class:`IssuerRouter` sends each token to the instance whose issuer is the
token's (unverified) ``iss``; the chosen instance then verifies it completely, ``iss``
included, with its own keys, so a token signed by another instance never verifies.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .claims import ClerkClaims
from .connection import session_cookie_names
from .errors import ClerkAuthError, ErrorReason
from .settings import ClerkSettings
from .token_cache import Prepared, prepared_for
from .tokens import ReadToken, read_token, verify_prepared

__all__ = ["Instance", "IssuerRouter", "unverified_issuer"]


class Instance:
    """One Clerk instance: its settings, and the key source and token cache they select."""

    __slots__ = ("_prepared", "cookie_names", "issuer", "settings")

    def __init__(self, settings: ClerkSettings) -> None:
        self.settings = settings
        self.issuer = settings.issuer
        self.cookie_names = session_cookie_names(settings.session_cookie, settings.publishable_key)
        self._prepared: Prepared | None = None

    def __repr__(self) -> str:
        return f"Instance(issuer={self.issuer!r})"

    def prepared(self) -> Prepared:
        """The key source, token cache and claim rules; raises ``auth-not-configured`` without
        a key source.

        Looked up on first use (not at construction, so an app module can build its
        ``ClerkAuth`` before the environment is complete, e.g. in tests that override it).
        """
        prepared = self._prepared
        if prepared is None:
            prepared = self._prepared = prepared_for(self.settings)
        return prepared

    async def verify(
        self, token: str, now: float, token_read: ReadToken | None = None
    ) -> ClerkClaims:
        prepared = self._prepared or self.prepared()
        return await verify_prepared(token, self.settings, prepared, now, token_read)

    async def warm_up(self) -> None:
        source = self.prepared().source
        await source.warm_up()


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` of ``token``'s payload, read without any verification (for routing only).

    Raises ``token-invalid`` when the token is not a compact JWT with JSON object segments
    (an opaque machine token included: it has no issuer to route by).
    """
    try:
        return read_token(token).issuer
    except ClerkAuthError as error:
        if error.reason is not ErrorReason.TOKEN_TYPE_MISMATCH:
            raise
        raise ClerkAuthError(
            ErrorReason.TOKEN_INVALID, "not a JWT: expected 3 dot-separated segments, got 1"
        ) from None


class IssuerRouter:
    """Finds the instance of a token among several, by its ``iss``, without any network."""

    def __init__(self, instances: Sequence[Instance]) -> None:
        self.instances = tuple(instances)
        self._by_issuer = {instance.issuer: instance for instance in instances}
        self._issuers = ", ".join(repr(i.issuer) for i in instances)
        # Tokens already verified, with their instance: a repeated token (a browser sends the
        # same one for a minute) skips the payload decode. Bounded like the token caches.
        self._verified: dict[str, Instance] = {}
        self._max_verified = sum(i.settings.token_cache_size for i in instances)
        self._lock = threading.Lock()

    def route(self, token: str) -> Instance:
        """The instance whose issuer is the token's ``iss``; else 401 ``token-invalid-issuer``."""
        instance = self._verified.get(token)
        if instance is not None:
            return instance
        return self.for_issuer(unverified_issuer(token))

    def for_issuer(self, iss: str | None) -> Instance:
        """The instance whose issuer is ``iss``; else 401 ``token-invalid-issuer``."""
        instance = self._by_issuer.get(iss) if iss is not None else None
        if instance is None:
            found = "has no iss" if iss is None else "has an iss that is none of them"
            raise ClerkAuthError(
                ErrorReason.TOKEN_INVALID_ISSUER,
                f"this app trusts the Clerk instances {self._issuers}; the token {found} "
                "(add the instance's settings to ClerkAuth([...]) if it should be trusted)",
            )
        return instance

    async def verify(self, token: str, now: float) -> ClerkClaims:
        instance = self._verified.get(token)
        if instance is not None:
            return await instance.verify(token, now)
        # A new token is read once, for routing and for its verification.
        token_read = read_token(token)
        instance = self.for_issuer(token_read.issuer)
        claims = await instance.verify(token, now, token_read)
        if self._max_verified:
            self._remember(token, instance)
        return claims

    def _remember(self, token: str, instance: Instance) -> None:
        with self._lock:
            verified = self._verified
            while verified and len(verified) >= self._max_verified:
                del verified[next(iter(verified))]  # the oldest entry
            verified[token] = instance
