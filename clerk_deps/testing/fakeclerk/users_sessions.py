"""Sessions, session tokens and JWT templates (the users they belong to: :mod:`.users`)."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..issuer import TEMPLATE_CATEGORY, TestIssuer
from ..signing import sign_jwt
from .common import (
    FakeClerkError,
    checked_lifetime,
    invalid_param,
    json_body,
    json_route,
    new_id,
    not_found,
    read_expires_in_seconds,
)
from .users import Users

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


@dataclass(frozen=True)
class JwtTemplate:
    """A JWT template: custom ``claims`` (``{{user.*}}`` shortcodes allowed), a ``lifetime``
    in seconds and the clock skew ``nbf`` is back-dated by."""

    name: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    lifetime: int = 60
    allowed_clock_skew: int = 5


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


class UsersSessions(Users):
    """Sessions and the tokens they mint, at ``/v1/sessions`` (users: :class:`~.users.Users`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sessions: dict[str, dict[str, Any]] = {}
        self._templates: dict[str, JwtTemplate] = {}

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            json_route("/v1/sessions", "POST", self._http_create_session),
            json_route("/v1/sessions/{session_id}", "GET", self._http_get_session),
            json_route("/v1/sessions/{session_id}/revoke", "POST", self._http_revoke_session),
            json_route("/v1/sessions/{session_id}/tokens", "POST", self._http_session_token),
            json_route(
                "/v1/sessions/{session_id}/tokens/{template}", "POST", self._http_template_token
            ),
        ]

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user_id: str) -> dict[str, Any]:
        """Create an active session for ``user_id``, as ``POST /v1/sessions`` does."""
        now = self._now_ms()
        with self._lock:
            if user_id not in self._users:
                raise not_found("user", user_id)
            session: dict[str, Any] = {
                "object": "session",
                "id": new_id("sess"),
                "user_id": user_id,
                "client_id": new_id("client"),
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
            raise not_found("session", session_id)
        return session

    def _active_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "active":
            # Clerk mints tokens for active sessions only; the emulator reports any other
            # session as not found, so a client cannot tell a revoked id from a wrong one.
            raise not_found("active session", session_id)
        return session

    # -- tokens ------------------------------------------------------------------------------

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

    async def _http_create_session(self, request: Request) -> dict[str, Any]:
        body = await json_body(request)
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
            raise invalid_param("user_id", "user_id must be a string", "form_param_format_invalid")
        return self.create_session(user_id)

    async def _http_get_session(self, request: Request) -> dict[str, Any]:
        return self.get_session(request.path_params["session_id"])

    async def _http_revoke_session(self, request: Request) -> dict[str, Any]:
        return self.revoke_session(request.path_params["session_id"])

    async def _http_session_token(self, request: Request) -> dict[str, Any]:
        expires = await read_expires_in_seconds(request)
        jwt = self.session_token(request.path_params["session_id"], expires_in_seconds=expires)
        return {"object": "token", "jwt": jwt}

    async def _http_template_token(self, request: Request) -> dict[str, Any]:
        expires = await read_expires_in_seconds(request)
        jwt = self.template_token(
            request.path_params["session_id"],
            request.path_params["template"],
            expires_in_seconds=expires,
        )
        return {"object": "token", "jwt": jwt}
