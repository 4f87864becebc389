"""Machine tokens: the four kinds of token Clerk issues, told apart by shape alone.

:func:`detect_token_type` looks only at the token's text (a prefix, or the unverified header
and payload of a JWT), so a token of a kind the route does not accept is refused before any
key is fetched or any Backend API call is made. :class:`MachineAuth` is what a verified
machine token gives a route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from .errors import ClerkAuthError, ErrorReason
from .readonly import read_only

__all__ = [
    "M2M_CATEGORY",
    "OPAQUE_PREFIXES",
    "Accepts",
    "MachineAuth",
    "TokenType",
    "accepted_types",
    "check_opaque_shape",
    "detect_token_type",
    "opaque_type",
    "require_scopes",
]

M2M_CATEGORY = "cl_B7d4PD333AAA"
_OAUTH_TYP = frozenset({"at+jwt", "application/at+jwt"})

# Opaque tokens: a prefix, then URL-safe characters. The bounds are generous around Clerk's
# tokens (a few dozen characters); anything outside them cannot be a Clerk token and never
# leaves the process.
OPAQUE_MIN_BODY = 16
OPAQUE_MAX_BODY = 512
_OPAQUE_BODY = re.compile(rf"[A-Za-z0-9_-]{{{OPAQUE_MIN_BODY},{OPAQUE_MAX_BODY}}}")


class TokenType(str, Enum):
    """The kinds of token Clerk issues; routes say which they accept."""

    SESSION_TOKEN = "session_token"
    M2M_TOKEN = "m2m_token"
    OAUTH_TOKEN = "oauth_token"
    API_KEY = "api_key"

    def __str__(self) -> str:
        return self.value


LABELS: Mapping[TokenType, str] = {
    TokenType.SESSION_TOKEN: "a session token",
    TokenType.M2M_TOKEN: "an M2M token",
    TokenType.OAUTH_TOKEN: "an OAuth access token",
    TokenType.API_KEY: "an API key",
}

MACHINE_TYPES = frozenset({TokenType.M2M_TOKEN, TokenType.OAUTH_TOKEN, TokenType.API_KEY})

OPAQUE_PREFIXES: Mapping[str, TokenType] = {
    "mt_": TokenType.M2M_TOKEN,
    "oat_": TokenType.OAUTH_TOKEN,
    "ak_": TokenType.API_KEY,
}

Accepts = TokenType | str | Iterable[TokenType | str]
"""One :class:`TokenType` (or its value), several, or ``"any"``."""


def accepted_types(accepts: Accepts) -> frozenset[TokenType]:
    """``accepts`` as a set of types; ``"any"`` is all four. An unknown name is a ``ValueError``
    (a programming error, raised when the route is declared, not per request)."""
    if isinstance(accepts, str) and accepts == "any":
        return frozenset(TokenType)
    items = [accepts] if isinstance(accepts, (TokenType, str)) else list(accepts)
    try:
        types = frozenset(TokenType(item) for item in items)
    except ValueError:
        known = ", ".join(repr(t.value) for t in TokenType)
        raise ValueError(
            f"accepts={accepts!r}: each item must be one of {known} or 'any'"
        ) from None
    if not types:
        raise ValueError("accepts must name at least one token type")
    return types


_BY_PREFIX3 = {"mt_": TokenType.M2M_TOKEN, "ak_": TokenType.API_KEY}


def opaque_type(token: str) -> TokenType | None:
    """The type an opaque token's prefix announces, or ``None`` for anything else."""
    kind = _BY_PREFIX3.get(token[:3])
    if kind is None and token.startswith("oat_"):
        return TokenType.OAUTH_TOKEN
    return kind


def detect_token_type(
    token: str, header: Mapping[str, Any], payload: Mapping[str, Any]
) -> TokenType:
    """The type of a JWT from its unverified ``header`` and ``payload`` (clerk-reference order:
    ``sub`` ``mch_...`` is M2M, then ``typ`` ``at+jwt`` is OAuth, else a session token)."""
    sub = payload.get("sub")
    if isinstance(sub, str) and sub.startswith("mch_"):
        return TokenType.M2M_TOKEN
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() in _OAUTH_TYP:
        return TokenType.OAUTH_TOKEN
    return TokenType.SESSION_TOKEN


def check_opaque_shape(token: str, kind: TokenType) -> None:
    """Refuse (``token-invalid``) an opaque token no Clerk instance could have issued, so that
    it never costs a Backend API call."""
    prefix = next(p for p, k in OPAQUE_PREFIXES.items() if k is kind)
    if not _OPAQUE_BODY.fullmatch(token[len(prefix) :]):
        raise ClerkAuthError(
            ErrorReason.TOKEN_INVALID,
            f"not {LABELS[kind]} Clerk could issue: after '{prefix}' come "
            f"{OPAQUE_MIN_BODY} to {OPAQUE_MAX_BODY} characters from A-Z a-z 0-9 _ -",
        )


# -- the verified machine ----------------------------------------------------------------


class MachineAuth(BaseModel):
    """A verified machine token: who sent it and what it may do.

    ``id`` is the token's id (``mt_...``, ``ak_...``, ``oat_...``: never the secret itself),
    ``subject`` the machine, user or organization it acts for (``mch_...``, ``user_...``,
    ``org_...``), ``scopes`` what it was granted, ``claims`` the custom claims (M2M tokens and
    API keys), ``name`` the API key's name, ``client_id`` the OAuth application, and
    ``expires_at`` seconds since the epoch (``None``: does not expire). Frozen, lists and dicts
    included: one verification is shared by every request that presents the same token.
    """

    model_config = ConfigDict(frozen=True)

    token_type: Literal[TokenType.M2M_TOKEN, TokenType.OAUTH_TOKEN, TokenType.API_KEY]
    id: str
    subject: str
    scopes: list[str] = []
    claims: dict[str, Any] | None = None
    name: str | None = None
    client_id: str | None = None
    expires_at: float | None = None

    @field_validator("scopes", "claims", mode="after")
    @classmethod
    def _read_only(cls, value: Any) -> Any:
        return read_only(value)

    @property
    def user_id(self) -> str | None:
        """``subject`` when it is a user (API keys of a user, OAuth tokens), else ``None``."""
        return self.subject if self.subject.startswith("user_") else None

    @property
    def org_id(self) -> str | None:
        """``subject`` when it is an organization (organization API keys), else ``None``."""
        return self.subject if self.subject.startswith("org_") else None

    @property
    def machine_id(self) -> str | None:
        """``subject`` when it is a machine (M2M tokens), else ``None``."""
        return self.subject if self.subject.startswith("mch_") else None


def require_scopes(auth: MachineAuth, scopes: Iterable[str]) -> None:
    """Raise ``scope-required`` (403) naming the first of ``scopes`` that ``auth`` lacks."""
    granted = auth.scopes
    for scope in scopes:
        if scope not in granted:
            raise ClerkAuthError(
                ErrorReason.SCOPE_REQUIRED,
                f"{LABELS[auth.token_type]} without the scope {scope!r}, which this endpoint "
                "requires",
                extra={"scope": scope},
            )
