"""Key sets: both JWKS endpoints, key rotation and key-server outages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ...settings import ClerkSettings
from ..signing import key_id_for, public_jwk, public_pem, shared_private_key
from .common import FakeClerkError, json_route
from .core import FIRST_KEY_SLOT, FakeClerkCore


class KeySets(FakeClerkCore):
    """``GET /.well-known/jwks.json`` and ``GET /v1/jwks``, rotation and outages."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jwks_failure: int | None = None

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            json_route("/.well-known/jwks.json", "GET", self._http_jwks),
            json_route("/v1/jwks", "GET", self._http_jwks),
        ]

    def settings(self, **overrides: Any) -> ClerkSettings:
        # A rotation must be picked up by the next request, as the Testing page shows it: an
        # unknown kid refetches the key set at once (CLERK_JWKS_REFRESH_COOLDOWN=0) instead of
        # waiting out the production cooldown. A keyword still overrides it.
        return super().settings(**{"jwks_refresh_cooldown": 0, **overrides})

    settings.__signature__ = FakeClerkCore.settings.__signature__  # type: ignore[attr-defined]
    settings.__doc__ = FakeClerkCore.settings.__doc__

    def env_vars(self) -> dict[str, str]:
        return {**super().env_vars(), "CLERK_JWKS_REFRESH_COOLDOWN": "0"}

    env_vars.__doc__ = FakeClerkCore.env_vars.__doc__

    @property
    def public_pem(self) -> str:
        """The current public key as PEM (for networkless ``settings(jwt_key=...)``)."""
        with self._lock:
            return public_pem(self._keys[0][1])

    def jwks(self) -> dict[str, Any]:
        """The key set both JWKS endpoints serve: the current key first."""
        with self._lock:
            return {"keys": [public_jwk(key, kid) for kid, key in self._keys]}

    # -- keys --------------------------------------------------------------------------------

    def rotate_keys(self, *, keep_previous: bool = False) -> str:
        """Sign with a new key pair from now on; returns its ``kid``.

        By default the old key leaves the key set, as when Clerk rotates an instance's keys:
        tokens it signed stop verifying once a verifier refetches the set. With
        ``keep_previous=True`` the old key stays published after the new one, for testing a
        graceful rollover. Unlike Clerk, sessions stay active, so a test can mint a token
        with the new key at once.
        """
        with self._lock:
            self._generation += 1
            slot = FIRST_KEY_SLOT + self._generation
        key = shared_private_key(slot)  # generated outside the lock: it takes a while
        current = (key_id_for(key), key)
        with self._lock:
            self._keys = [current, *self._keys] if keep_previous else [current]
            return current[0]

    @contextmanager
    def jwks_outage(self, status_code: int = 503) -> Iterator[None]:
        """Both JWKS endpoints answer ``status_code`` (with Clerk's error body) in the block."""
        with self._lock:
            self._jwks_failure = status_code
        try:
            yield
        finally:
            with self._lock:
                self._jwks_failure = None

    async def _http_jwks(self, request: Request) -> dict[str, Any]:
        with self._lock:
            failure = self._jwks_failure
        if failure is not None:
            raise FakeClerkError(
                failure,
                "internal_clerk_error",
                "Oops, an unexpected error occurred",
                "There was an internal error on our servers. We've been notified and are "
                "working on fixing it.",
            )
        return self.jwks()
