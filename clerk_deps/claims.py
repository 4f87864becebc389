"""The typed result of a verified token: :class:`ClerkClaims` (with Clerk's ``has()``) and
:class:`Actor`, and how claims are built from a verified payload.

Clerk packs the active organization, billing and step-up state into compact claims. They are
normalised once, when the claims are built (:func:`ClerkClaims.from_payload`; verification
builds them without pydantic's validation when it can, see :mod:`clerk_deps.token_claims`).
The rules themselves live
in :mod:`clerk_deps.organization` (roles, permissions, ``fea``/``pla``, v1/v2 organization
claims), :mod:`clerk_deps.reverification` (``fva`` and step-up) and :mod:`clerk_deps.readonly`
(the read-only containers); their public names are importable from here too.
Everything here is pure: no I/O, no FastAPI, and nothing raises on a malformed claim. Anything
that cannot be read grants nothing, so every check that depends on it fails closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

# Re-exported: these names were defined here before the rules moved to their own modules.
from .organization import (
    ScopedName,
    decode_org_permissions,
    has_scoped_name,
    normalize_org_permission,
    normalize_org_role,
    normalize_organization,
    parse_requested_name,
    parse_scoped_claim,
)
from .readonly import ReadOnlyDict, ReadOnlyList, ReadOnlyModel, read_only
from .reverification import (
    REVERIFICATION_LEVELS,
    REVERIFICATION_PRESETS,
    Reverification,
    ReverificationLevel,
    is_reverified,
    parse_fva,
    parse_reverification,
    reverification_requirement,
)

__all__ = [
    "REVERIFICATION_LEVELS",
    "REVERIFICATION_PRESETS",
    "Actor",
    "ClerkClaims",
    "ReadOnlyDict",
    "ReadOnlyList",
    "Reverification",
    "ReverificationLevel",
    "ScopedName",
    "decode_org_permissions",
    "has_scoped_name",
    "is_reverified",
    "normalize_org_permission",
    "normalize_org_role",
    "normalize_organization",
    "parse_fva",
    "parse_requested_name",
    "parse_reverification",
    "parse_scoped_claim",
    "read_only",
    "reverification_requirement",
]


class Actor(ReadOnlyModel):
    """Who is acting on the user's behalf (impersonation): the ``act`` claim."""

    sub: str | None = None
    sid: str | None = None
    iss: str | None = None
    type: str | None = None


# Marks a validation of a token payload (see ClerkClaims.from_payload); compared by identity.
_TOKEN_CONTEXT: dict[str, Any] = {"source": "token"}


class ClerkClaims(ReadOnlyModel):
    """Claims of a verified Clerk session token.

    ``sub``, ``iat`` and ``exp`` are always present; ``email`` is ``None`` unless the instance
    customised its session token (or :func:`require_clerk_user_with_email` filled it in).
    Organization data is normalised from v1 and v2 tokens: ``org_role`` always has the ``org:``
    prefix and ``org_permissions`` holds ``org:<feature>:<permission>`` keys. Malformed ``fva``,
    ``pla``, ``fea`` or organization claims do not fail verification; they read as absent,
    so every check that needs them fails closed. Custom claims are kept as extra fields.
    """

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
    org_permissions: Annotated[list[str], AfterValidator(ReadOnlyList)] = Field(
        default_factory=ReadOnlyList
    )

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        # A token payload follows Clerk's rules to the letter (a v2 token's flat org_* claims
        # grant nothing); claims built in code (tests, overrides) may set org_* fields directly.
        return _normalized(data, from_token=info.context is _TOKEN_CONTEXT)

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
        """Build claims from a verified token payload (Clerk's v1/v2 organization rules)."""
        return cls.model_validate(payload, context=_TOKEN_CONTEXT)

    def has(
        self,
        *,
        role: str | None = None,
        permission: str | None = None,
        feature: str | None = None,
        plan: str | None = None,
        reverification: str | Mapping[str, Any] | None = None,
    ) -> bool:
        """Clerk's ``has()``: ``True`` only when every dimension asked for passes.

        ``role`` and ``permission`` need an active organization (``admin`` equals
        ``org:admin``); ``feature`` and ``plan`` match ``fea``/``pla`` (``"x"`` in any scope,
        ``"o:x"``/``"org:x"`` or ``"u:x"``/``"user:x"`` in one); ``reverification`` is a preset
        name or ``{"level": ..., "afterMinutes": n}``. Asking for nothing, or anything
        malformed on either side, gives ``False``.
        """
        dimensions: list[tuple[Callable[[Any], bool], object]] = [
            (self._has_role, role),
            (self._has_permission, permission),
            (self._has_feature, feature),
            (self._has_plan, plan),
            (self._has_reverification, reverification),
        ]
        checks = [(check, value) for check, value in dimensions if value is not None]
        try:
            return bool(checks) and all(check(value) for check, value in checks)
        except (TypeError, ValueError):
            return False

    def _has_role(self, role: object) -> bool:
        return self.org_id is not None and self.org_role == normalize_org_role(role)

    def _has_permission(self, permission: object) -> bool:
        wanted = normalize_org_permission(permission)
        return self.org_id is not None and wanted in self.org_permissions

    def _has_feature(self, feature: object) -> bool:
        return has_scoped_name(self.fea, parse_requested_name(feature, "feature"))

    def _has_plan(self, plan: object) -> bool:
        return has_scoped_name(self.pla, parse_requested_name(plan, "plan"))

    def _has_reverification(self, config: object) -> bool:
        return is_reverified(self.fva, parse_reverification(config))


def _normalized(data: Mapping[str, Any], *, from_token: bool) -> dict[str, Any]:
    """The claims as the model stores them: organization data from either token shape, ``fva``
    parsed, malformed ``pla``/``fea`` dropped, NumericDates in whole seconds."""
    values = dict(data)
    values.update(normalize_organization(values, token=from_token))
    values["fva"] = parse_fva(values.get("fva"))
    for name in ("pla", "fea"):
        if not isinstance(values.get(name), str):
            values[name] = None
    # RFC 7519 NumericDates may be fractional; verification compares them exactly, the
    # model keeps whole seconds (rounded down).
    for name in ("iat", "exp", "nbf"):
        value = values.get(name)
        if isinstance(value, float) and math.isfinite(value):
            values[name] = math.floor(value)
    act = values.get("act")
    if isinstance(act, dict):
        values["act"] = read_only(act)
    return values
