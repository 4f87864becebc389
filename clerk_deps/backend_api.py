"""An async client for the parts of Clerk's Backend API a backend needs.

Works against real Clerk (``https://api.clerk.com``) and against the local emulator
(``clerk_deps.testing.FakeClerk``) through ``CLERK_API_URL``. Every call has a timeout;
Clerk's error bodies (``{"errors": [{"code", "message", "long_message"}]}``) become a
:class:`ClerkAPIError` carrying the first error's code. The secret key is never logged or put
in ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from ._http import shared_client
from .settings import ClerkSettings

__all__ = [
    "MACHINE_API_VERSION",
    "MACHINE_VERIFY_CALLS",
    "ClerkAPIError",
    "ClerkBackendAPI",
    "primary_email_address",
]

MACHINE_API_VERSION = "2026-05-12"
MACHINE_VERIFY_CALLS: dict[str, tuple[str, str]] = {
    "m2m_token": ("/m2m_tokens/verify", "token"),
    "api_key": ("/api_keys/verify", "secret"),
    "oauth_token": ("/oauth_applications/access_tokens/verify", "access_token"),
}
"""Token type -> (path, body field) of Clerk's verify endpoints for opaque machine tokens."""


class ClerkAPIError(Exception):
    """A Backend API call failed.

    ``status_code`` is the HTTP status (``None`` when no answer arrived), ``code`` Clerk's
    error code (``resource_not_found``, ...) or ``timeout`` / ``network_error``, and
    ``retry_after`` the seconds of the answer's ``Retry-After`` header (429, 503), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        long_message: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.long_message = long_message
        self.errors = errors or []
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no answer"
        return f"{self.message} ({status}, code {self.code})"


class ClerkBackendAPI:
    """``await api.get_user("user_...")`` and friends; see the module docstring."""

    def __init__(
        self,
        secret_key: str | SecretStr,
        *,
        api_url: str = "https://api.clerk.com",
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._secret = secret_key if isinstance(secret_key, SecretStr) else SecretStr(secret_key)
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._client = client

    @classmethod
    def from_settings(cls, settings: ClerkSettings) -> ClerkBackendAPI:
        """A client for ``settings.api_url`` with ``settings.secret_key``."""
        if settings.secret_key is None or not settings.secret_key.get_secret_value():
            raise ClerkAPIError("CLERK_SECRET_KEY is not set; the Backend API needs it")
        return cls(settings.secret_key, api_url=settings.api_url, timeout=settings.http_timeout)

    def __repr__(self) -> str:
        return f"ClerkBackendAPI(api_url={self.api_url!r}, secret_key='**********')"

    # -- calls -------------------------------------------------------------------------

    async def get_user(self, user_id: str) -> dict[str, Any]:
        """The user object (``email_addresses``, ``primary_email_address_id``, ...)."""
        return await self._request("GET", f"/v1/users/{_segment(user_id)}")

    async def create_user(self, **fields: Any) -> dict[str, Any]:
        """Create a user, e.g. ``create_user(email_address=["a@example.com"])``."""
        return await self._request("POST", "/v1/users", json=fields)

    async def create_session(self, user_id: str) -> dict[str, Any]:
        """Create a session for ``user_id`` (Clerk allows this on test instances only)."""
        return await self._request("POST", "/v1/sessions", json={"user_id": user_id})

    async def get_session(self, session_id: str) -> dict[str, Any]:
        """The session object (``status``: ``active``, ``revoked``, ``ended``, ...)."""
        return await self._request("GET", f"/v1/sessions/{_segment(session_id)}")

    async def create_session_token(
        self,
        session_id: str,
        template: str | None = None,
        expires_in_seconds: int | None = None,
    ) -> str:
        """Mint a session token (or a JWT-template token) for ``session_id``; returns the JWT."""
        path = f"/v1/sessions/{_segment(session_id)}/tokens"
        if template is not None:
            path += f"/{_segment(template)}"
        body = {} if expires_in_seconds is None else {"expires_in_seconds": expires_in_seconds}
        answer = await self._request("POST", path, json=body)
        jwt = answer.get("jwt")
        if not isinstance(jwt, str):
            raise ClerkAPIError("the Backend API answered without a 'jwt'", status_code=200)
        return jwt

    async def get_jwks(self) -> dict[str, Any]:
        """The instance's public key set."""
        return await self._request("GET", "/v1/jwks")

    async def create_api_key(
        self, subject: str, name: str, scopes: list[str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Create an API key for a user or organization; its text is under ``"secret"``."""
        body = {"type": "api_key", "subject": subject, "name": name, "scopes": scopes or []}
        return await self._request("POST", "/api_keys", json={**body, **fields})

    async def create_m2m_token(self, **fields: Any) -> dict[str, Any]:
        """Create an M2M token (this client must hold a machine secret key); its text is under
        ``"token"``. ``fields``: ``seconds_until_expiration``, ``claims``, ``token_format``."""
        return await self._request(
            "POST", "/m2m_tokens", json=fields, headers={"Clerk-API-Version": MACHINE_API_VERSION}
        )

    async def verify_machine_token(self, kind: str, token: str) -> dict[str, Any]:
        """Clerk's answer for an opaque machine token: ``kind`` is ``m2m_token``, ``api_key`` or
        ``oauth_token``. Sent as Clerk's SDKs send it (no ``/v1``, ``Clerk-API-Version``); an
        M2M token needs this client to hold the machine secret key or the instance's key."""
        path, field = MACHINE_VERIFY_CALLS[kind]
        return await self._request(
            "POST", path, json={field: token}, headers={"Clerk-API-Version": MACHINE_API_VERSION}
        )

    # -- plumbing ----------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        client = self._client or shared_client()
        headers = {
            "Authorization": f"Bearer {self._secret.get_secret_value()}",
            "Accept": "application/json",
            **(headers or {}),
        }
        try:
            response = await client.request(
                method, self.api_url + path, json=json, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise ClerkAPIError(
                f"{method} {path} got no answer within {self.timeout:g} s", code="timeout"
            ) from None
        except httpx.HTTPError as error:
            raise ClerkAPIError(
                f"{method} {path} could not reach {self.api_url} ({type(error).__name__})",
                code="network_error",
            ) from None
        try:
            return _parse(method, path, response)
        except ClerkAPIError as error:
            raise _redacted(error, self._secret.get_secret_value()) from None


def _redacted(error: ClerkAPIError, secret: str) -> ClerkAPIError:
    """The same error with the secret key blanked out of whatever the server echoed."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(secret, "[redacted]")
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return ClerkAPIError(
        scrub(error.message),
        status_code=error.status_code,
        code=scrub(error.code),
        long_message=scrub(error.long_message),
        errors=scrub(error.errors),
        retry_after=error.retry_after,
    )


def _segment(value: str) -> str:
    return quote(value, safe="")


def _parse(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = first.get("message") or (
        "answered with something other than a JSON object"
        if response.is_success
        else f"failed with HTTP {response.status_code}"
    )
    raise ClerkAPIError(
        f"{method} {path}: {message}",
        status_code=response.status_code,
        code=first.get("code"),
        long_message=first.get("long_message"),
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; ``None`` when absent or not a
    sane number (an HTTP date is not what Clerk sends)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


def primary_email_address(user: Mapping[str, Any]) -> str | None:
    """The address of ``primary_email_address_id`` in a user object, or ``None``."""
    primary = user.get("primary_email_address_id")
    addresses = user.get("email_addresses")
    if not primary or not isinstance(addresses, list):
        return None
    for entry in addresses:
        if isinstance(entry, dict) and entry.get("id") == primary:
            address = entry.get("email_address")
            return address if isinstance(address, str) else None
    return None
