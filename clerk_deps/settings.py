"""Configuration: ``ClerkSettings`` and the process-wide ``get_settings``.

Values come from, highest priority first: keyword arguments, real environment variables,
``.env.local``, ``.env`` (both read from the working directory when the settings are built).
Nothing is read at import time: :func:`get_settings` builds the object on first use, so an
app module imported before its dotenv file exists still sees the file on its first request.
What each value must look like (keys, URLs, lists) is checked by :mod:`clerk_deps.setting_values`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ClerkAuthError, ErrorReason
from .setting_values import (
    FrozenList,
    checked_issuer_path,
    checked_url,
    describe_validation_error,
    issuer_from_publishable_key,
    load_rsa_public_key,
    public_key_pem,
    refuse_publishable_key,
    setting_error,
    split_list,
)

__all__ = ["ClerkSettings", "FrozenList", "get_settings", "issuer_from_publishable_key"]


def _env(*names: str) -> Any:
    """Accept the field name as a keyword and each listed variable from the environment."""
    return AliasChoices(*names)


class ClerkSettings(BaseSettings):
    """Everything ``require_clerk_user`` needs to trust a Clerk session token.

    One of ``jwt_key``, ``issuer`` / ``publishable_key`` / ``jwks_url`` or ``secret_key`` is
    enough; ``issuer`` (or ``publishable_key``) is recommended in any case, so that ``iss`` is
    checked.

    Immutable once built (assigning a field raises, list fields cannot be changed), because
    key sources, token caches and policies are kept per settings object: a change would
    otherwise be served stale. To change a value, build a new ``ClerkSettings(...)``.
    """

    model_config = SettingsConfigDict(
        env_prefix="CLERK_",
        env_file=(".env", ".env.local"),
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        validate_default=False,
        frozen=True,
    )

    issuer: str | None = Field(default=None, validation_alias=_env("CLERK_ISSUER"))
    publishable_key: str | None = Field(
        default=None, validation_alias=_env("CLERK_PUBLISHABLE_KEY")
    )
    jwt_key: str | None = Field(
        default=None, validation_alias=_env("CLERK_JWT_KEY", "CLERK_PEM_PUBLIC_KEY"), repr=False
    )
    jwks_url: str | None = Field(default=None, validation_alias=_env("CLERK_JWKS_URL"))
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=_env("CLERK_SECRET_KEY"), repr=False
    )
    api_url: str = Field(default="https://api.clerk.com", validation_alias=_env("CLERK_API_URL"))
    audience: Annotated[str | list[str] | None, NoDecode] = Field(
        default=None, validation_alias=_env("CLERK_JWT_AUDIENCE", "CLERK_AUDIENCE")
    )
    authorized_parties: Annotated[list[str], NoDecode] = Field(
        default_factory=FrozenList, validation_alias=_env("CLERK_AUTHORIZED_PARTIES")
    )
    leeway: float = Field(default=5.0, ge=0, le=60, validation_alias=_env("CLERK_LEEWAY"))
    verify_iat: bool = Field(default=True, validation_alias=_env("CLERK_VERIFY_IAT"))
    accept_pending_sessions: bool = Field(
        default=False, validation_alias=_env("CLERK_ACCEPT_PENDING_SESSIONS")
    )
    accept_jwt_templates: bool = Field(
        default=False, validation_alias=_env("CLERK_ACCEPT_JWT_TEMPLATES")
    )
    session_cookie: str = Field(
        default="__session", min_length=1, validation_alias=_env("CLERK_SESSION_COOKIE")
    )
    jwks_cache_ttl: float = Field(default=300, ge=0, validation_alias=_env("CLERK_JWKS_CACHE_TTL"))
    jwks_refresh_cooldown: float = Field(
        default=10, ge=0, validation_alias=_env("CLERK_JWKS_REFRESH_COOLDOWN")
    )
    http_timeout: float = Field(
        default=5, gt=0, le=120, validation_alias=_env("CLERK_HTTP_TIMEOUT")
    )
    token_cache_size: int = Field(
        default=10_000, ge=0, validation_alias=_env("CLERK_TOKEN_CACHE_SIZE")
    )
    webhook_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("CLERK_WEBHOOK_SIGNING_SECRET"), repr=False
    )
    revocation: Literal["off", "webhooks", "backend_api"] = Field(
        default="off", validation_alias=_env("CLERK_REVOCATION")
    )
    revocation_fail_open: bool = Field(
        default=True, validation_alias=_env("CLERK_REVOCATION_FAIL_OPEN")
    )
    session_status_ttl: float = Field(
        default=5, ge=0, le=300, validation_alias=_env("CLERK_SESSION_STATUS_TTL")
    )
    redis_url: SecretStr | None = Field(
        default=None, validation_alias=_env("CLERK_REDIS_URL"), repr=False
    )
    machine_secret_key: SecretStr | None = Field(
        default=None, validation_alias=_env("CLERK_MACHINE_SECRET_KEY"), repr=False
    )
    machine_cache_ttl: float = Field(
        default=60, ge=0, le=3600, validation_alias=_env("CLERK_MACHINE_CACHE_TTL")
    )
    machine_negative_cache_ttl: float = Field(
        default=10, ge=0, le=3600, validation_alias=_env("CLERK_MACHINE_NEGATIVE_CACHE_TTL")
    )
    machine_cache_size: int = Field(
        default=10_000, ge=0, validation_alias=_env("CLERK_MACHINE_CACHE_SIZE")
    )
    machine_verify_rate: float = Field(
        default=5, gt=0, validation_alias=_env("CLERK_MACHINE_VERIFY_RATE")
    )
    machine_verify_burst: int = Field(
        default=20, ge=1, validation_alias=_env("CLERK_MACHINE_VERIFY_BURST")
    )
    websocket_token_protocol: bool = Field(
        default=False, validation_alias=_env("CLERK_WEBSOCKET_TOKEN_PROTOCOL")
    )
    """Read a WebSocket's token from an offered subprotocol ``clerk.token.<token>``."""
    websocket_query_param: str | None = Field(
        default=None, validation_alias=_env("CLERK_WEBSOCKET_QUERY_PARAM")
    )
    """Query parameter a WebSocket's token may come in (off when unset: URLs end up in logs)."""
    websocket_refusal: Literal["response", "close"] = Field(
        default="response", validation_alias=_env("CLERK_WEBSOCKET_REFUSAL")
    )
    """How a refused WebSocket handshake is answered: ``response`` (the HTTP error, where the
    server supports the ASGI denial response) or ``close`` (accept, then close with code 1008
    and the reason code: the only answer a browser's JavaScript can read)."""

    def __init__(self, **values: Any) -> None:
        # Unknown keywords are a programming error; unknown *environment* variables are not
        # (real .env files hold DATABASE_URL, CLERK_SIGN_IN_URL, ...), hence no extra="forbid".
        unknown = [name for name in values if not name.startswith("_") and name not in _ACCEPTED]
        if unknown:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(type="extra_forbidden", loc=(name,), input=None)
                    for name in unknown
                ],
                hide_input=True,
            )
        super().__init__(**values)

    # -- field validators -------------------------------------------------------------

    @field_validator("issuer", "jwks_url", "publishable_key", "jwt_key", "audience", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_signing_secret", "redis_url", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("revocation", mode="before")
    @classmethod
    def _revocation_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace("-", "_")
            if value not in ("off", "webhooks", "backend_api"):
                raise setting_error("CLERK_REVOCATION", "must be one of off, webhooks, backend_api")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise setting_error(
                "CLERK_REDIS_URL",
                "must be a redis://, rediss:// or unix:// URL, e.g. redis://localhost:6379/0",
            )
        return SecretStr(url)

    @field_validator("websocket_query_param", mode="before")
    @classmethod
    def _check_query_param(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9_.~-]+", value.strip()):
            raise setting_error(
                "CLERK_WEBSOCKET_QUERY_PARAM",
                "a query parameter name of letters, digits and _ . ~ - (e.g. token), or empty "
                "to keep tokens out of URLs",
            )
        return value.strip()

    @field_validator("websocket_refusal", mode="before")
    @classmethod
    def _check_refusal(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("response", "close"):
            return value.strip().lower()
        raise setting_error("CLERK_WEBSOCKET_REFUSAL", "must be 'response' or 'close'")

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return checked_issuer_path(checked_url(value.strip().rstrip("/"), "CLERK_ISSUER"))

    @field_validator("jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_url(value.strip(), "CLERK_JWKS_URL")

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        return checked_url(value.strip().rstrip("/"), "CLERK_API_URL")

    @field_validator("publishable_key")
    @classmethod
    def _check_publishable_key(cls, value: str | None) -> str | None:
        if value is not None:
            issuer_from_publishable_key(value.strip())
            return value.strip()
        return None

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            refuse_publishable_key(value.get_secret_value())
        return value

    @field_validator("jwt_key")
    @classmethod
    def _check_jwt_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        pem = public_key_pem(value)
        load_rsa_public_key(pem)
        return pem

    @field_validator("audience", mode="before")
    @classmethod
    def _parse_audience(cls, value: Any) -> Any:
        if isinstance(value, str):
            items = split_list(value, "CLERK_JWT_AUDIENCE")
            return items[0] if len(items) == 1 else (items or None)
        return value

    @field_validator("authorized_parties", mode="before")
    @classmethod
    def _parse_authorized_parties(cls, value: Any) -> Any:
        items = split_list(value, "CLERK_AUTHORIZED_PARTIES") if isinstance(value, str) else value
        if isinstance(items, list):
            return [p.strip().rstrip("/") if isinstance(p, str) else p for p in items]
        return items

    @field_validator("audience", "authorized_parties")
    @classmethod
    def _freeze_lists(cls, value: Any) -> Any:
        return FrozenList(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _derive(self) -> ClerkSettings:
        # The model is frozen: derived values are written while it is still being built.
        if self.issuer is None and self.publishable_key is not None:
            self.__dict__["issuer"] = issuer_from_publishable_key(self.publishable_key)
        if self.jwks_url is None and self.issuer is not None:
            self.__dict__["jwks_url"] = f"{self.issuer}/.well-known/jwks.json"
        return self

    # -- derived views ---------------------------------------------------------------

    @property
    def key_source_name(self) -> str | None:
        """Which key source verification uses: ``"jwt_key"``, ``"jwks_url"``, ``"secret_key"``."""
        if self.jwt_key:
            return "jwt_key"
        if self.jwks_url:
            return "jwks_url"
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return "secret_key"
        return None

    def verification_policy(self) -> tuple[Any, ...]:
        """Every setting that decides whether a verified signature makes a valid token.

        Two settings objects with the same policy and key source accept the same tokens, so
        they may share verified-token caches.
        """
        return (
            self.issuer,
            self.audiences,
            tuple(self.authorized_parties),
            self.leeway,
            self.verify_iat,
            self.accept_pending_sessions,
            self.accept_jwt_templates,
        )

    @property
    def audiences(self) -> tuple[str, ...]:
        """The configured audience as a tuple; empty when audience checking is off."""
        if self.audience is None:
            return ()
        return (self.audience,) if isinstance(self.audience, str) else tuple(self.audience)


_ALIASES = {
    alias
    for field in ClerkSettings.model_fields.values()
    if isinstance(field.validation_alias, AliasChoices)
    for alias in field.validation_alias.choices
    if isinstance(alias, str)
}
_ACCEPTED = frozenset({*ClerkSettings.model_fields, *_ALIASES, *(a.lower() for a in _ALIASES)})


@lru_cache(maxsize=1)
def get_settings() -> ClerkSettings:
    """The process-wide settings, built on first call (never at import).

    ``get_settings.cache_clear()`` forces a re-read. Invalid configuration raises a
    :class:`ClerkAuthError` with reason ``auth-not-configured`` naming the variables to fix,
    so a protected route answers a clear 500 instead of a stack trace.
    """
    try:
        return ClerkSettings()
    except ValidationError as error:
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            f"Clerk settings are invalid: {describe_validation_error(error)}",
        ) from None
