"""Users, at ``/v1/users``: creating one (verified email addresses) and reading it back."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from .common import FakeClerkError, invalid_param, json_body, json_route, new_id, not_found
from .core import FakeClerkCore


def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return False
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_param(name, f"{name} must be a string", "form_param_format_invalid")
    return value


def _metadata(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise invalid_param(name, f"{name} must be a JSON object", "form_param_format_invalid")
    return value


class Users(FakeClerkCore):
    """Users, at ``/v1/users``; sessions and tokens build on them (:mod:`.users_sessions`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._users: dict[str, dict[str, Any]] = {}

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            json_route("/v1/users", "POST", self._http_create_user),
            json_route("/v1/users/{user_id}", "GET", self._http_get_user),
        ]

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
            raise invalid_param(
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
                "id": new_id("user"),
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
            "id": new_id("idn"),
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
                raise not_found("user", user_id)
            return copy.deepcopy(user)

    async def _http_create_user(self, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        emails = body.get("email_address")
        if emails is not None and not (
            isinstance(emails, list) and all(isinstance(e, str) for e in emails)
        ):
            raise invalid_param(
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
