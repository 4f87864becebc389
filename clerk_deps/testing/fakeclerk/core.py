"""The emulated instance itself: its URL, secret key, clock, signing keys and request log.

Every resource module (:mod:`.keys`, :mod:`.users_sessions`, ...) extends
:class:`FakeClerkCore`; :class:`~.app.FakeClerk` combines them and serves the routes each
one contributes through :meth:`FakeClerkCore._routes`.
"""

from __future__ import annotations

import base64
import inspect
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.routing import Route

from ...setting_values import issuer_from_publishable_key
from ...settings import ClerkSettings
from ..issuer import IsolatedSettings
from ..signing import key_id_for, shared_private_key

DEFAULT_BASE_URL = "https://fake-clerk.test"
FIRST_KEY_SLOT = 2  # shared_private_key slots 0 and 1 belong to TestIssuer


class FakeClerkCore:
    """State every resource shares; see :class:`~.app.FakeClerk` for the public class."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        secret_key: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._secret_key = secret_key or f"sk_test_{secrets.token_urlsafe(32)}"
        self.clock = clock
        self._lock = threading.RLock()
        self._generation = 0
        key = shared_private_key(FIRST_KEY_SLOT)
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = [(key_id_for(key), key)]
        self._requests: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"FakeClerk(base_url={self._base_url!r}, kid={self.kid!r})"

    def _routes(self) -> list[Route]:
        """The HTTP routes of this resource and those before it; each resource adds its own."""
        return []

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _signer(self) -> tuple[str, rsa.RSAPrivateKey, str]:
        with self._lock:
            kid, key = self._keys[0]
            return kid, key, self._base_url

    # -- what an app needs to trust it -----------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the emulator answers, and the ``iss`` of its tokens (its Frontend API URL)."""
        return self._base_url

    @property
    def secret_key(self) -> str:
        """The Backend API key (``sk_test_...``) every ``/v1`` request must present."""
        return self._secret_key

    @property
    def publishable_key(self) -> str:
        """``pk_test_`` + base64 of ``<host>$``, as Clerk builds publishable keys.

        Clerk's format has no room for a scheme, so it decodes to ``https://<host>``: it
        describes the in-process default ``https://fake-clerk.test``, but not a served
        emulator on ``http://127.0.0.1:<port>`` (use ``CLERK_ISSUER`` there, as
        :meth:`env_vars` does).
        """
        host = urlsplit(self._base_url).netloc
        return "pk_test_" + base64.b64encode(f"{host}$".encode()).decode("ascii")

    @property
    def kid(self) -> str:
        """The ``kid`` of the key that signs new tokens."""
        with self._lock:
            return self._keys[0][0]

    def settings(self, **overrides: Any) -> ClerkSettings:
        """``ClerkSettings`` that trust this emulator and use its Backend API.

        ``issuer`` and ``api_url`` are :attr:`base_url` and ``secret_key`` its key, so keys are
        fetched from ``{base_url}/.well-known/jwks.json``, which needs :meth:`serve`. In process,
        pass ``jwt_key=fake.public_pem`` for networkless verification. Environment variables and
        dotenv files are ignored; keywords override any field.
        """
        values: dict[str, Any] = {
            "issuer": self._base_url,
            "api_url": self._base_url,
            "secret_key": self._secret_key,
        }
        values.update(overrides)
        return IsolatedSettings(**values)

    # As for TestIssuer.settings: no visible parameters, so that
    # ``app.dependency_overrides[get_settings] = fake.settings`` works as written.
    settings.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )

    def env_vars(self) -> dict[str, str]:
        """The ``CLERK_*`` variables that make ``get_settings()`` trust this emulator.

        ``CLERK_PUBLISHABLE_KEY`` is included only when it decodes back to :attr:`base_url`
        (see :attr:`publishable_key`).
        """
        variables = {
            "CLERK_ISSUER": self._base_url,
            "CLERK_API_URL": self._base_url,
            "CLERK_SECRET_KEY": self._secret_key,
        }
        try:
            if issuer_from_publishable_key(self.publishable_key) == self._base_url:
                variables["CLERK_PUBLISHABLE_KEY"] = self.publishable_key
        except ValueError:
            pass
        return variables

    # -- requests seen -------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every HTTP request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests reached ``path`` (with ``method``, when given)."""
        with self._lock:
            return sum(
                1 for m, p in self._requests if p == path and (method is None or m == method)
            )
