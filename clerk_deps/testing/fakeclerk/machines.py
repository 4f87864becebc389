"""Machine tokens: M2M tokens, API keys and OAuth access tokens, issued, verified and revoked.

Clerk's machine-token endpoints have no ``/v1`` prefix, as Clerk's SDKs call them:

==============================================  =========================================
``POST /m2m_tokens``                            create an M2M token (machine secret key)
``POST /m2m_tokens/verify``                     ``{"token"}``
``POST /m2m_tokens/{id}/revoke``                revoke it
``POST /api_keys``                              create an API key (secret key)
``POST /api_keys/verify``                       ``{"secret"}``
``POST /api_keys/{id}/revoke``                  revoke it
``POST /oauth_applications/access_tokens/verify``  ``{"access_token"}``
==============================================  =========================================

A verify call answers 200 with the token's object (``revoked``/``expired`` set as they
apply), or 404 with Clerk's error body for a token it does not know. How a revoked or expired
token is answered can be chosen per token (``answer=``), since Clerk does not document it.
"""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from starlette.requests import Request
from starlette.routing import Route

from ..issuer import M2M_CATEGORY
from ..signing import sign_jwt
from .common import (
    FakeClerkError,
    header_invalid,
    invalid_param,
    json_body,
    json_route,
    key_invalid,
    new_id,
    not_found,
)
from .core import FakeClerkCore

__all__ = ["MachineAnswer", "MachineTokens"]

VERIFY_PATHS = (
    "/m2m_tokens/verify",
    "/api_keys/verify",
    "/oauth_applications/access_tokens/verify",
)
_SECRET_ALPHABET = string.ascii_letters + string.digits
_OBJECTS = {
    "mt": "machine_to_machine_token",
    "ak": "api_key",
    "oat": "clerk_idp_oauth_access_token",
}

MachineAnswer = Literal["object", "not_found", "inactive"]
"""How a verify call answers a revoked or expired token: the object with ``revoked`` or
``expired`` set (``"object"``), 404 (``"not_found"``), or ``{"active": false}``
(``"inactive"``, OAuth)."""


def _secret(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))}"


def _scopes(value: Any, name: str = "scopes") -> list[str]:
    if value is None:
        return []
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise invalid_param(name, f"{name} must be a list of strings", "form_param_format_invalid")
    return list(value)


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise invalid_param(
            "seconds_until_expiration", "seconds_until_expiration must be a positive integer"
        )
    return value


def _optional(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


class MachineTokens(FakeClerkCore):
    """M2M tokens, API keys and OAuth access tokens, with Clerk's verify endpoints."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._machine_secret_key = _secret("ak")
        self._machine_id = new_id("mch")
        self._machine_tokens: dict[str, dict[str, Any]] = {}  # by secret
        self._answers: dict[str, MachineAnswer] = {}  # by id, for revoked/expired tokens
        self._verify_failure: tuple[int, int | None] | None = None

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            json_route("/m2m_tokens", "POST", self._http_create_m2m_token),
            json_route("/m2m_tokens/verify", "POST", self._http_verify_m2m_token),
            json_route("/m2m_tokens/{token_id}/revoke", "POST", self._http_revoke),
            json_route("/api_keys", "POST", self._http_create_api_key),
            json_route("/api_keys/verify", "POST", self._http_verify_api_key),
            json_route("/api_keys/{token_id}/revoke", "POST", self._http_revoke),
            json_route(
                "/oauth_applications/access_tokens/verify", "POST", self._http_verify_oauth_token
            ),
        ]

    @property
    def machine_secret_key(self) -> str:
        """The machine secret key (``CLERK_MACHINE_SECRET_KEY``): creates and verifies M2M
        tokens; the instance's secret key verifies them too."""
        return self._machine_secret_key

    @property
    def machine_id(self) -> str:
        """The machine (``mch_...``) that :attr:`machine_secret_key` belongs to."""
        return self._machine_id

    # -- issuing ---------------------------------------------------------------------------

    def _issue(
        self,
        prefix: str,
        fields: Mapping[str, Any],
        seconds_until_expiration: int | None,
    ) -> dict[str, Any]:
        now = self._now_ms()
        expiration = (
            None if seconds_until_expiration is None else now + seconds_until_expiration * 1000
        )
        record: dict[str, Any] = {
            "object": _OBJECTS[prefix],
            "id": new_id(prefix),
            **fields,
            "revoked": False,
            "revocation_reason": None,
            "expired": False,
            "expiration": expiration,
            "created_at": now,
            "updated_at": now,
        }
        secret = _secret(prefix)
        with self._lock:
            self._machine_tokens[secret] = record
        return {**record, "secret" if prefix == "ak" else "token": secret}

    def create_m2m_token(
        self,
        machine_id: str | None = None,
        *,
        scopes: Sequence[str] = (),
        claims: Mapping[str, Any] | None = None,
        seconds_until_expiration: int | None = None,
        token_format: Literal["opaque", "jwt"] = "opaque",  # noqa: S107 - not a password
    ) -> dict[str, Any]:
        """An M2M token for ``machine_id``, as ``POST /m2m_tokens`` creates; its text is
        under ``"token"`` (``mt_...``, or a JWT with ``token_format="jwt"``). ``scopes`` are
        the ids of the machines it may call; ``machine_id`` defaults to :attr:`machine_id`."""
        fields = {
            "subject": machine_id or self._machine_id,
            "scopes": list(scopes),
            "claims": dict(claims or {}),
        }
        created = self._issue("mt", fields, seconds_until_expiration)
        if token_format == "jwt":
            with self._lock:  # a JWT is verified locally: Clerk does not store it
                del self._machine_tokens[created["token"]]
            created["token"] = self._m2m_jwt(created, seconds_until_expiration)
        return created

    def _m2m_jwt(self, created: Mapping[str, Any], lifetime: int | None) -> str:
        kid, key, issuer = self._signer()
        issued_at = int(self.clock())
        payload: dict[str, Any] = {
            **created["claims"],
            "iss": issuer,
            "sub": created["subject"],
            "jti": created["id"],
            "iat": issued_at,
            "nbf": issued_at - 5,
            "exp": issued_at + (lifetime or 3600),
            "scopes": " ".join(created["scopes"]),
        }
        header = {"alg": "RS256", "cat": M2M_CATEGORY, "kid": kid, "typ": "JWT"}
        return sign_jwt(header, payload, key)

    def create_api_key(
        self,
        subject: str = "user_test",
        *,
        name: str = "test key",
        scopes: Sequence[str] = (),
        claims: Mapping[str, Any] | None = None,
        description: str | None = None,
        created_by: str | None = None,
        seconds_until_expiration: int | None = None,
    ) -> dict[str, Any]:
        """An API key owned by a user (``user_...``) or an organization (``org_...``), as
        ``POST /api_keys`` creates; its text (``ak_...``) is under ``"secret"``."""
        if not subject.startswith(("user_", "org_")):
            raise invalid_param("subject", "subject must be a user or organization id")
        fields = {
            "type": "api_key",
            "name": name,
            "subject": subject,
            "description": description,
            "scopes": list(scopes),
            "claims": None if claims is None else dict(claims),
            "created_by": created_by,
            "last_used_at": None,
        }
        return self._issue("ak", fields, seconds_until_expiration)

    def create_oauth_token(
        self,
        user_id: str = "user_test",
        *,
        client_id: str = "oauth_app_test",
        scopes: Sequence[str] = ("profile", "email"),
        seconds_until_expiration: int | None = 3600,
    ) -> dict[str, Any]:
        """An opaque OAuth access token (``oat_...``, under ``"token"``) that ``client_id``
        holds for ``user_id``, as Clerk issues at the end of an OAuth flow."""
        fields = {"subject": user_id, "client_id": client_id, "scopes": list(scopes)}
        return self._issue("oat", fields, seconds_until_expiration)

    # -- revoking and expiring ----------------------------------------------------------------

    def _record(self, token_or_id: str) -> dict[str, Any]:
        found = self._machine_tokens.get(token_or_id)
        if found is None:
            found = next((r for r in self._machine_tokens.values() if r["id"] == token_or_id), None)
        if found is None:
            raise not_found("machine token", token_or_id)
        return found

    def revoke_machine_token(
        self, token_or_id: str, *, reason: str | None = None, answer: MachineAnswer = "object"
    ) -> dict[str, Any]:
        """Revoke an M2M token, API key or OAuth token (by its text or id); later verify calls
        answer as ``answer`` says. Returns the object."""
        with self._lock:
            record = self._record(token_or_id)
            record.update(revoked=True, revocation_reason=reason, updated_at=self._now_ms())
            self._answers[record["id"]] = answer
            return dict(record)

    def expire_machine_token(self, token_or_id: str, *, answer: MachineAnswer = "object") -> None:
        """Make a token expire now (``expiration`` is set to the current time)."""
        with self._lock:
            record = self._record(token_or_id)
            record.update(expiration=self._now_ms(), updated_at=self._now_ms())
            self._answers[record["id"]] = answer

    @contextmanager
    def machine_verify_outage(
        self, status_code: int = 503, *, retry_after: int | None = None
    ) -> Iterator[None]:
        """Every verify endpoint answers ``status_code`` (e.g. 429 with ``retry_after``)."""
        with self._lock:
            self._verify_failure = (status_code, retry_after)
        try:
            yield
        finally:
            with self._lock:
                self._verify_failure = None

    def verify_calls(self) -> int:
        """How many verify calls (all three kinds) reached the emulator."""
        return sum(self.count(path, "POST") for path in VERIFY_PATHS)

    # -- verifying ---------------------------------------------------------------------------

    def verify_machine_token(self, prefix: str, token: str) -> dict[str, Any]:
        """What a verify endpoint answers for ``token`` (``prefix``: ``mt``, ``ak``, ``oat``)."""
        now = self._now_ms()
        with self._lock:
            record = self._machine_tokens.get(token)
            if record is None or record["object"] != _OBJECTS[prefix]:
                raise not_found(_OBJECTS[prefix].replace("_", " "), "given")
            expiration = record["expiration"]
            answer = dict(record, expired=expiration is not None and expiration <= now)
            shown = self._answers.get(record["id"], "object")
        if answer["revoked"] or answer["expired"]:
            if shown == "not_found":
                raise not_found(_OBJECTS[prefix].replace("_", " "), "given")
            if shown == "inactive":
                return {"active": False}
        return answer

    # -- HTTP endpoints ------------------------------------------------------------------------

    def _authorize(self, request: Request, *, machine_key: bool = False) -> None:
        scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise header_invalid()
        accepted = [self._secret_key, *([self._machine_secret_key] if machine_key else [])]
        given = credentials.strip().encode()
        if not any(hmac.compare_digest(given, key.encode()) for key in accepted):
            raise key_invalid()

    def _check_outage(self) -> None:
        with self._lock:
            failure = self._verify_failure
        if failure is not None:
            status, retry_after = failure
            raise FakeClerkError(
                status,
                "too_many_requests" if status == 429 else "internal_clerk_error",
                "Too many requests" if status == 429 else "Oops, an unexpected error occurred",
                "verification is unavailable right now",
                headers=None if retry_after is None else {"Retry-After": str(retry_after)},
            )

    async def _verify(
        self, request: Request, prefix: str, field: str, machine_key: bool
    ) -> dict[str, Any]:
        self._authorize(request, machine_key=machine_key)
        self._check_outage()
        value = (await json_body(request)).get(field)
        if not isinstance(value, str) or not value:
            raise invalid_param(field, f"{field} must be a non-empty string", "form_param_missing")
        return self.verify_machine_token(prefix, value)

    async def _http_verify_m2m_token(self, request: Request) -> dict[str, Any]:
        return await self._verify(request, "mt", "token", machine_key=True)

    async def _http_verify_api_key(self, request: Request) -> dict[str, Any]:
        return await self._verify(request, "ak", "secret", machine_key=False)

    async def _http_verify_oauth_token(self, request: Request) -> dict[str, Any]:
        return await self._verify(request, "oat", "access_token", machine_key=False)

    async def _http_create_m2m_token(self, request: Request) -> dict[str, Any]:
        self._authorize(request, machine_key=True)
        body = await json_body(request)
        claims = body.get("claims")
        if claims is not None and not isinstance(claims, dict):
            raise invalid_param(
                "claims", "claims must be a JSON object", "form_param_format_invalid"
            )
        token_format = body.get("token_format", "opaque")
        if token_format not in ("opaque", "jwt"):
            raise invalid_param("token_format", "token_format must be 'opaque' or 'jwt'")
        return self.create_m2m_token(
            _optional(body, "machine_id"),
            scopes=_scopes(body.get("scopes")),
            claims=claims,
            seconds_until_expiration=_seconds(body.get("seconds_until_expiration")),
            token_format=token_format,
        )

    async def _http_create_api_key(self, request: Request) -> dict[str, Any]:
        self._authorize(request)
        body = await json_body(request)
        subject, name = body.get("subject"), body.get("name")
        if not isinstance(subject, str) or not isinstance(name, str):
            raise invalid_param("subject", "name and subject must be strings", "form_param_missing")
        claims = body.get("claims")
        if claims is not None and not isinstance(claims, dict):
            raise invalid_param(
                "claims", "claims must be a JSON object", "form_param_format_invalid"
            )
        return self.create_api_key(
            subject,
            name=name,
            scopes=_scopes(body.get("scopes")),
            claims=claims,
            description=body.get("description")
            if isinstance(body.get("description"), str)
            else None,
            created_by=body.get("created_by") if isinstance(body.get("created_by"), str) else None,
            seconds_until_expiration=_seconds(body.get("seconds_until_expiration")),
        )

    async def _http_revoke(self, request: Request) -> dict[str, Any]:
        self._authorize(request, machine_key=request.url.path.startswith("/m2m_tokens/"))
        reason = (await json_body(request)).get("revocation_reason")
        return self.revoke_machine_token(
            request.path_params["token_id"], reason=reason if isinstance(reason, str) else None
        )
