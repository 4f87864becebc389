"""``FakeClerk``: a local emulator of the parts of Clerk a backend talks to.

It answers on Clerk's paths with Clerk's JSON shapes and error bodies
(``{"errors": [{"code", "message", "long_message"}], "clerk_trace_id"}``):

=======================================  ==========================================
``GET /.well-known/jwks.json``           public key set (Frontend API; no auth)
``GET /v1/jwks``                         key set (Backend API)
``POST /v1/users``                       create a user
``GET /v1/users/{user_id}``              a user object
``POST /v1/sessions``                    create a session for ``{"user_id"}``
``GET /v1/sessions/{session_id}``        a session object
``POST /v1/sessions/{id}/revoke``        revoke it
``POST /v1/sessions/{id}/tokens``        mint a session token
``POST /v1/sessions/{id}/tokens/{tpl}``  mint a JWT-template token
=======================================  ==========================================

Every ``/v1`` path needs ``Authorization: Bearer <secret_key>`` (401 otherwise). Tokens are
real RS256 JWTs: ``iss`` is the emulator's base URL and ``kid`` its current key's id, so an app
configured with :meth:`FakeClerk.settings` or :meth:`FakeClerk.env_vars` verifies them exactly
as it verifies Clerk's. Use it in process (``httpx.ASGITransport(app=fake.app)``) or as a real
server on 127.0.0.1 (``with FakeClerk().serve() as fake:``).
"""

from __future__ import annotations

import base64
import copy
import hmac
import inspect
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..settings import ClerkSettings, issuer_from_publishable_key
from .issuer import (
    TEMPLATE_CATEGORY,
    IsolatedSettings,
    TestIssuer,
    key_id_for,
    public_jwk,
    public_pem,
    shared_private_key,
    sign_jwt,
)
from .server import serve_app

__all__ = ["FakeClerk", "FakeClerkError", "JwtTemplate"]

DEFAULT_BASE_URL = "https://fake-clerk.test"
MIN_TOKEN_SECONDS = 30
MAX_TOKEN_SECONDS = 315_360_000
_FIRST_KEY_SLOT = 2  # shared_private_key slots 0 and 1 belong to TestIssuer
_SESSION_EXPIRES_MS = 7 * 24 * 3600 * 1000
_SESSION_ABANDONS_MS = 30 * 24 * 3600 * 1000
_RESERVED_TEMPLATE_CLAIMS = frozenset({"azp", "exp", "iat", "iss", "jti", "nbf", "sub"})
_SHORTCODE = re.compile(r"\{\{\s*user\.([a-z_]+)\s*\}\}")
_USER_SHORTCODES = frozenset(
    {
        "id",
        "external_id",
        "first_name",
        "last_name",
        "full_name",
        "username",
        "primary_email_address",
        "image_url",
        "has_image",
        "public_metadata",
        "unsafe_metadata",
        "created_at",
    }
)
_ID_ALPHABET = string.ascii_letters + string.digits


class FakeClerkError(Exception):
    """A Backend API error: HTTP ``status_code`` and Clerk's ``code``/``message``/``long_message``.

    Raised by the Python methods of :class:`FakeClerk` and sent as Clerk's error body by its
    HTTP endpoints, so both report the same thing.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        long_message: str,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {long_message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.long_message = long_message
        self.meta = dict(meta or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Clerk sends for this error."""
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "long_message": self.long_message,
        }
        if self.meta:
            error["meta"] = self.meta
        return {"errors": [error], "clerk_trace_id": uuid.uuid4().hex}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code)


def _not_found(what: str, identifier: str) -> FakeClerkError:
    return FakeClerkError(
        404, "resource_not_found", "not found", f"No {what} was found with id {identifier}"
    )


def _invalid_param(
    name: str, long_message: str, code: str = "form_param_value_invalid"
) -> FakeClerkError:
    return FakeClerkError(422, code, "is invalid", long_message, meta={"param_name": name})


def _body_invalid() -> FakeClerkError:
    return FakeClerkError(
        400,
        "request_body_invalid",
        "Request body invalid",
        "The request body is invalid. Please consult the API documentation for more information.",
    )


def _header_invalid() -> FakeClerkError:
    return FakeClerkError(
        401,
        "authorization_header_format_invalid",
        "Invalid Authorization header format",
        "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'",
    )


def _key_invalid() -> FakeClerkError:
    return FakeClerkError(
        401,
        "clerk_key_invalid",
        "Secret Key is invalid",
        "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is "
        "correct.",
    )


@dataclass(frozen=True)
class JwtTemplate:
    """A JWT template: custom ``claims`` (``{{user.*}}`` shortcodes allowed), a ``lifetime``
    in seconds and the clock skew ``nbf`` is back-dated by."""

    name: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    lifetime: int = 60
    allowed_clock_skew: int = 5


def _new_id(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ID_ALPHABET) for _ in range(27))}"


def checked_lifetime(value: object, name: str = "expires_in_seconds") -> int:
    """``value`` if it is an integer from 30 to 315360000 seconds, else a 422 error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_param(
            name, f"{name} must be an integer number of seconds", "form_param_format_invalid"
        )
    if not MIN_TOKEN_SECONDS <= value <= MAX_TOKEN_SECONDS:
        raise _invalid_param(
            name, f"{name} must be between {MIN_TOKEN_SECONDS} and {MAX_TOKEN_SECONDS}"
        )
    return value


def _shortcodes(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_SHORTCODE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_shortcodes(item) for item in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_shortcodes(item) for item in value))
    return set()


def _user_value(user: Mapping[str, Any], name: str) -> Any:
    if name == "primary_email_address":
        primary = user.get("primary_email_address_id")
        emails = user.get("email_addresses", [])
        return next((e["email_address"] for e in emails if e["id"] == primary), None)
    if name == "full_name":
        parts = [user.get("first_name"), user.get("last_name")]
        return " ".join(p for p in parts if p) or None
    return user.get(name)


def _resolve(value: Any, user: Mapping[str, Any]) -> Any:
    """``value`` with ``{{user.*}}`` shortcodes filled in, as Clerk renders a template."""
    if isinstance(value, str):
        whole = _SHORTCODE.fullmatch(value.strip())
        if whole:
            return copy.deepcopy(_user_value(user, whole.group(1)))
        return _SHORTCODE.sub(lambda m: str(_user_value(user, m.group(1)) or ""), value)
    if isinstance(value, Mapping):
        return {key: _resolve(item, user) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(item, user) for item in value]
    return value


def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return False
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid_param(name, f"{name} must be a string", "form_param_format_invalid")
    return value


def _metadata(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise _invalid_param(name, f"{name} must be a JSON object", "form_param_format_invalid")
    return value


class FakeClerk:
    """A local Clerk: users, sessions, session and template tokens, key sets and key rotation.

    ``FakeClerk()`` is ready for in-process use through :attr:`app`; ``with fake.serve():``
    runs it on 127.0.0.1 and sets :attr:`base_url` (and so every token's ``iss``) to the real
    address. The Python methods (:meth:`create_user`, :meth:`create_session`,
    :meth:`session_token`, ...) do what the endpoints do, for quick test set-up.

    Signing keys are generated once per process and shared by all instances (their ``iss``
    differs), so creating many emulators stays fast. ``clock`` (seconds since the epoch) sets
    the time tokens and objects are stamped with.
    """

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
        key = shared_private_key(_FIRST_KEY_SLOT)
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = [(key_id_for(key), key)]
        self._users: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._templates: dict[str, JwtTemplate] = {}
        self._requests: list[tuple[str, str]] = []
        self._jwks_failure: int | None = None
        self._serving = False
        self._router = self._build_router()

    def __repr__(self) -> str:
        return f"FakeClerk(base_url={self._base_url!r}, kid={self.kid!r})"

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

    @property
    def public_pem(self) -> str:
        """The current public key as PEM (for networkless ``settings(jwt_key=...)``)."""
        with self._lock:
            return public_pem(self._keys[0][1])

    def jwks(self) -> dict[str, Any]:
        """The key set both JWKS endpoints serve: the current key first."""
        with self._lock:
            return {"keys": [public_jwk(key, kid) for kid, key in self._keys]}

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
            slot = _FIRST_KEY_SLOT + self._generation
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

    # -- users and sessions --------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def create_user(
        self,
        *,
        email_address: str | Sequence[str] | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        external_id: str | None = None,
        public_metadata: Mapping[str, Any] | None = None,
        private_metadata: Mapping[str, Any] | None = None,
        unsafe_metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a user, as ``POST /v1/users`` does; returns the user object.

        Email addresses are created verified (strategy ``admin``) and the first one is primary.
        An invalid or already used address raises :class:`FakeClerkError` (422).
        """
        emails = [email_address] if isinstance(email_address, str) else list(email_address or [])
        if not all(_is_email(e) for e in emails):
            raise _invalid_param(
                "email_address",
                "email_address must be a valid email address.",
                "form_param_format_invalid",
            )
        now = self._now_ms()
        with self._lock:
            taken = {
                e["email_address"].lower()
                for user in self._users.values()
                for e in user["email_addresses"]
            }
            if any(e.lower() in taken for e in emails):
                raise FakeClerkError(
                    422,
                    "form_identifier_exists",
                    "That email address is taken. Please try another.",
                    "That email address is taken. Please try another.",
                    meta={"param_name": "email_address"},
                )
            addresses = [self._email_object(e, now) for e in emails]
            user: dict[str, Any] = {
                "id": _new_id("user"),
                "object": "user",
                "external_id": external_id,
                "username": username,
                "first_name": first_name,
                "last_name": last_name,
                "image_url": "",
                "has_image": False,
                "primary_email_address_id": addresses[0]["id"] if addresses else None,
                "primary_phone_number_id": None,
                "primary_web3_wallet_id": None,
                "password_enabled": False,
                "two_factor_enabled": False,
                "totp_enabled": False,
                "backup_code_enabled": False,
                "email_addresses": addresses,
                "phone_numbers": [],
                "web3_wallets": [],
                "passkeys": [],
                "external_accounts": [],
                "saml_accounts": [],
                "public_metadata": dict(public_metadata or {}),
                "private_metadata": dict(private_metadata or {}),
                "unsafe_metadata": dict(unsafe_metadata or {}),
                "banned": False,
                "locked": False,
                "last_sign_in_at": None,
                "last_active_at": None,
                "created_at": now,
                "updated_at": now,
            }
            self._users[user["id"]] = user
            return copy.deepcopy(user)

    @staticmethod
    def _email_object(address: str, now: int) -> dict[str, Any]:
        return {
            "id": _new_id("idn"),
            "object": "email_address",
            "email_address": address,
            "reserved": False,
            "verification": {
                "status": "verified",
                "strategy": "admin",
                "attempts": None,
                "expire_at": None,
            },
            "linked_to": [],
            "created_at": now,
            "updated_at": now,
        }

    def get_user(self, user_id: str) -> dict[str, Any]:
        """The user object; :class:`FakeClerkError` 404 when there is none."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise _not_found("user", user_id)
            return copy.deepcopy(user)

    def create_session(self, user_id: str) -> dict[str, Any]:
        """Create an active session for ``user_id``, as ``POST /v1/sessions`` does."""
        now = self._now_ms()
        with self._lock:
            if user_id not in self._users:
                raise _not_found("user", user_id)
            session: dict[str, Any] = {
                "object": "session",
                "id": _new_id("sess"),
                "user_id": user_id,
                "client_id": _new_id("client"),
                "actor": None,
                "status": "active",
                "last_active_organization_id": None,
                "last_active_at": now,
                "latest_activity": None,
                "expire_at": now + _SESSION_EXPIRES_MS,
                "abandon_at": now + _SESSION_ABANDONS_MS,
                "created_at": now,
                "updated_at": now,
            }
            self._sessions[session["id"]] = session
            return copy.deepcopy(session)

    def get_session(self, session_id: str) -> dict[str, Any]:
        """The session object; :class:`FakeClerkError` 404 when there is none."""
        with self._lock:
            return copy.deepcopy(self._session(session_id))

    def revoke_session(self, session_id: str) -> dict[str, Any]:
        """Mark the session ``revoked``; it can mint no more tokens. Returns the session."""
        now = self._now_ms()
        with self._lock:
            session = self._session(session_id)
            session["status"] = "revoked"
            session["updated_at"] = now
            return copy.deepcopy(session)

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self._sessions.get(session_id)
        if session is None:
            raise _not_found("session", session_id)
        return session

    def _active_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "active":
            # Clerk mints tokens for active sessions only; the emulator reports any other
            # session as not found, so a client cannot tell a revoked id from a wrong one.
            raise _not_found("active session", session_id)
        return session

    # -- tokens ------------------------------------------------------------------------------

    def _signer(self) -> tuple[str, rsa.RSAPrivateKey, str]:
        with self._lock:
            kid, key = self._keys[0]
            return kid, key, self._base_url

    def session_token(
        self,
        session_id: str,
        *,
        expires_in_seconds: int | None = None,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A session token for an active session, as ``POST /v1/sessions/{id}/tokens`` mints.

        ``expires_in_seconds`` (30 to 315360000, default 60) sets ``exp - iat``. Python callers
        may also set the issue time (``now=time.time() - 3600`` gives an expired token) and
        extra claims with :meth:`TestIssuer.token`'s keywords (``org_role="admin"``, ...).
        """
        lifetime = 60 if expires_in_seconds is None else checked_lifetime(expires_in_seconds)
        with self._lock:
            user_id = self._active_session(session_id)["user_id"]
        kid, key, issuer_url = self._signer()
        issued_at = int(self.clock() if now is None else now)
        issuer = TestIssuer(issuer=issuer_url, kid=kid, private_key=key)
        return issuer.token(
            user_id, now=issued_at, **{"sid": session_id, "exp": issued_at + lifetime, **claims}
        )

    def add_jwt_template(
        self,
        name: str,
        claims: Mapping[str, Any] | None = None,
        *,
        lifetime: int = 60,
        allowed_clock_skew: int = 5,
    ) -> JwtTemplate:
        """Define a JWT template (``aud`` and any custom claims; ``{{user.id}}``,
        ``{{user.primary_email_address}}``, ``{{user.first_name}}``, ``{{user.last_name}}``,
        ``{{user.full_name}}``, ``{{user.username}}``, ``{{user.external_id}}``,
        ``{{user.public_metadata}}``, ... are filled in per user). Reserved claims (``sub``,
        ``iss``, ``exp``, ...) and unknown shortcodes raise ``ValueError``."""
        custom = dict(claims or {})
        reserved = sorted(_RESERVED_TEMPLATE_CLAIMS.intersection(custom))
        if reserved:
            raise ValueError(f"JWT template claims cannot set reserved claims: {reserved}")
        unknown = sorted(_shortcodes(custom) - _USER_SHORTCODES)
        if unknown:
            raise ValueError(
                f"unknown shortcodes {unknown}; known: {', '.join(sorted(_USER_SHORTCODES))}"
            )
        template = JwtTemplate(
            name=name,
            claims=custom,
            lifetime=checked_lifetime(lifetime, "lifetime"),
            allowed_clock_skew=allowed_clock_skew,
        )
        with self._lock:
            self._templates[name] = template
        return template

    def template_token(
        self,
        session_id: str,
        template: str,
        *,
        expires_in_seconds: int | None = None,
        now: float | None = None,
    ) -> str:
        """A JWT-template token, as ``POST /v1/sessions/{id}/tokens/{template}`` mints: template
        category in the header, no ``sid``, the template's claims for the session's user."""
        lifetime = None if expires_in_seconds is None else checked_lifetime(expires_in_seconds)
        with self._lock:
            user = copy.deepcopy(self._users[self._active_session(session_id)["user_id"]])
            found = self._templates.get(template)
        if found is None:
            raise FakeClerkError(
                404,
                "resource_not_found",
                "not found",
                f"No JWT template exists with name: {template}",
            )
        kid, key, issuer_url = self._signer()
        issued_at = int(self.clock() if now is None else now)
        payload: dict[str, Any] = {
            **_resolve(found.claims, user),
            "sub": user["id"],
            "iat": issued_at,
            "nbf": issued_at - found.allowed_clock_skew,
            "exp": issued_at + (lifetime or found.lifetime),
            "iss": issuer_url,
            "jti": uuid.uuid4().hex[:20],
        }
        header = {"alg": "RS256", "cat": TEMPLATE_CATEGORY, "kid": kid, "typ": "JWT"}
        return sign_jwt(header, payload, key)

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

    # -- serving -------------------------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The ASGI app: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))``."""
        return self._asgi

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[FakeClerk]:
        """Run the emulator on 127.0.0.1 (on ``port``, by default a free one) for the block.

        :attr:`base_url` (and so ``iss``, :meth:`settings` and :meth:`env_vars`) becomes
        ``http://127.0.0.1:<port>`` inside the block and goes back afterwards. Needs uvicorn.
        """
        with self._lock:
            if self._serving:
                raise RuntimeError("this FakeClerk is already being served")
            self._serving = True
        previous = self._base_url
        try:
            with serve_app(self._asgi, port=port, lifespan="off") as url:
                with self._lock:
                    self._base_url = url
                yield self
        finally:
            with self._lock:
                self._base_url = previous
                self._serving = False

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with self._lock:
                self._requests.append((scope["method"], scope["path"]))
            if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
                denied = self._check_secret(Request(scope).headers.get("authorization"))
                if denied is not None:
                    await denied.response()(scope, receive, send)
                    return
        await self._router(scope, receive, send)

    def _check_secret(self, authorization: str | None) -> FakeClerkError | None:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _header_invalid()
        if not hmac.compare_digest(credentials.strip().encode(), self._secret_key.encode()):
            return _key_invalid()
        return None

    # -- HTTP endpoints ------------------------------------------------------------------------

    def _build_router(self) -> Starlette:
        def route(path: str, method: str, handler: Callable[[Request], Awaitable[Any]]) -> Route:
            async def endpoint(request: Request) -> Response:
                try:
                    return JSONResponse(await handler(request))
                except FakeClerkError as error:
                    return error.response()

            return Route(path, endpoint, methods=[method])

        async def unknown_route(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 404
            return FakeClerkError(
                status,
                "resource_not_found" if status == 404 else "request_method_invalid",
                "not found" if status == 404 else "method not allowed",
                f"{request.method} {request.url.path} is not an endpoint of this emulator",
            ).response()

        return Starlette(
            routes=[
                route("/.well-known/jwks.json", "GET", self._http_jwks),
                route("/v1/jwks", "GET", self._http_jwks),
                route("/v1/users", "POST", self._http_create_user),
                route("/v1/users/{user_id}", "GET", self._http_get_user),
                route("/v1/sessions", "POST", self._http_create_session),
                route("/v1/sessions/{session_id}", "GET", self._http_get_session),
                route("/v1/sessions/{session_id}/revoke", "POST", self._http_revoke_session),
                route("/v1/sessions/{session_id}/tokens", "POST", self._http_session_token),
                route(
                    "/v1/sessions/{session_id}/tokens/{template}", "POST", self._http_template_token
                ),
            ],
            exception_handlers={404: unknown_route, 405: unknown_route},
        )

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

    async def _http_create_user(self, request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        emails = body.get("email_address")
        if emails is not None and not (
            isinstance(emails, list) and all(isinstance(e, str) for e in emails)
        ):
            raise _invalid_param(
                "email_address",
                "email_address must be a list of strings",
                "form_param_format_invalid",
            )
        return self.create_user(
            email_address=emails,
            first_name=_optional_str(body, "first_name"),
            last_name=_optional_str(body, "last_name"),
            username=_optional_str(body, "username"),
            external_id=_optional_str(body, "external_id"),
            public_metadata=_metadata(body, "public_metadata"),
            private_metadata=_metadata(body, "private_metadata"),
            unsafe_metadata=_metadata(body, "unsafe_metadata"),
        )

    async def _http_get_user(self, request: Request) -> dict[str, Any]:
        return self.get_user(request.path_params["user_id"])

    async def _http_create_session(self, request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        user_id = body.get("user_id")
        if user_id is None:
            raise FakeClerkError(
                422,
                "form_param_missing",
                "is missing",
                "user_id must be included.",
                meta={"param_name": "user_id"},
            )
        if not isinstance(user_id, str):
            raise _invalid_param("user_id", "user_id must be a string", "form_param_format_invalid")
        return self.create_session(user_id)

    async def _http_get_session(self, request: Request) -> dict[str, Any]:
        return self.get_session(request.path_params["session_id"])

    async def _http_revoke_session(self, request: Request) -> dict[str, Any]:
        return self.revoke_session(request.path_params["session_id"])

    async def _http_session_token(self, request: Request) -> dict[str, Any]:
        expires = await _expires_in_seconds(request)
        jwt = self.session_token(request.path_params["session_id"], expires_in_seconds=expires)
        return {"object": "token", "jwt": jwt}

    async def _http_template_token(self, request: Request) -> dict[str, Any]:
        expires = await _expires_in_seconds(request)
        jwt = self.template_token(
            request.path_params["session_id"],
            request.path_params["template"],
            expires_in_seconds=expires,
        )
        return {"object": "token", "jwt": jwt}


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is ``{}``, anything else a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _body_invalid() from None
    if not isinstance(body, dict):
        raise _body_invalid()
    return body


async def _expires_in_seconds(request: Request) -> int | None:
    value = (await _json_body(request)).get("expires_in_seconds")
    return None if value is None else checked_lifetime(value)
