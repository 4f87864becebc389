"""The typed result of a verified token: :class:`ClerkClaims`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Actor", "ClerkClaims"]


class Actor(BaseModel):
    """Who is acting on the user's behalf (impersonation): the ``act`` claim."""

    model_config = ConfigDict(extra="allow", frozen=True)

    sub: str | None = None
    sid: str | None = None
    iss: str | None = None
    type: str | None = None


class ClerkClaims(BaseModel):
    """Claims of a verified Clerk session token.

    ``sub``, ``iat`` and ``exp`` are always present; ``email`` is ``None`` unless the instance
    customised its session token (or :func:`require_clerk_user_with_email` filled it in).
    Custom claims are kept as extra fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    sub: str
    iat: int
    exp: int
    iss: str | None = None
    nbf: int | None = None
    sid: str | None = None
    azp: str | None = None
    sts: str | None = None
    v: int | None = None
    jti: str | None = None
    pla: str | None = None
    fea: str | None = None
    email: str | None = None
    fva: tuple[int, int] | None = None
    act: Actor | None = None
    org_id: str | None = None
    org_slug: str | None = None
    org_role: str | None = None
    org_permissions: list[str] = Field(default_factory=list)

    @property
    def user_id(self) -> str:
        """The Clerk user id (``sub``)."""
        return self.sub

    @property
    def session_id(self) -> str | None:
        """The Clerk session id (``sid``); ``None`` for JWT-template tokens."""
        return self.sid

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ClerkClaims:
        """Build claims from a verified payload."""
        return cls.model_validate(payload)
