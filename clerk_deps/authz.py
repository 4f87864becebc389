"""Authorization as FastAPI dependencies: organization role and permission, billing, step-up.

Each factory checks its argument when the route is defined (a typo fails at import, not per
request) and returns an async dependency built on :func:`require_clerk_user`, or on
``auth.user`` with the keyword-only ``auth=`` (a :class:`ClerkAuth`). It answers with the same
:class:`ClerkClaims`, so one ``app.dependency_overrides[require_clerk_user]`` (or one
``override_clerk_user(app, auth=...)``) in tests covers every route, and a request that
fails gets a 403 with the reason code of contract section 3 (a WebSocket handshake is refused
the same way, see :mod:`clerk_deps.websocket`).

A dependency cannot add responses to the OpenAPI document; pass :data:`AUTH_RESPONSES` as
``responses=`` of the route, the router or the app to document the 401 and 403 bodies.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from .auth import ClerkAuth, default_auth
from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .organization import (
    ScopedName,
    has_scoped_name,
    normalize_org_permission,
    normalize_org_role,
    parse_requested_name,
)
from .reverification import Reverification, is_reverified, reverification_requirement
from .websocket import refusal_for

__all__ = [
    "AUTH_RESPONSES",
    "ClaimsDependency",
    "require_feature",
    "require_org_permission",
    "require_org_role",
    "require_plan",
    "require_reverification",
]

ClaimsDependency = Callable[..., Awaitable[ClerkClaims]]
"""What the factories return: use it in ``Depends(...)``; it resolves to the claims."""

Check = Callable[[ClerkClaims], ClerkAuthError | None]


def _guard(name: str, check: Check, auth: ClerkAuth | None) -> ClaimsDependency:
    bound = default_auth if auth is None else auth

    async def dependency(conn: HTTPConnection, claims: ClerkClaims) -> ClerkClaims:
        error = check(claims)
        if error is not None:
            settings = await bound.settings_for(conn, claims)
            raise await refusal_for(conn, error, settings)
        return claims

    user = bound.user
    # Built here, not from annotations: the dependency on ``user`` differs per ClerkAuth.
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("conn", _KEYWORD, annotation=HTTPConnection),
            inspect.Parameter("claims", _KEYWORD, annotation=Annotated[ClerkClaims, Depends(user)]),
        ],
        return_annotation=ClerkClaims,
    )
    dependency.__name__ = dependency.__qualname__ = name
    return dependency


_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


# -- organization ------------------------------------------------------------------------

_NO_ORGANIZATION = (
    "there is no active organization (the user must select one, e.g. with Clerk's "
    "<OrganizationSwitcher/> or setActive({organization}))"
)


def require_org_role(role: str, *, auth: ClerkAuth | None = None) -> ClaimsDependency:
    """A dependency that passes when the active organization role is ``role``.

    ``"admin"`` and ``"org:admin"`` mean the same. Without an active organization it fails
    with 403 ``org-role-required``. Raises ``ValueError``/``TypeError`` for an empty role.
    """
    wanted = normalize_org_role(role)

    def check(claims: ClerkClaims) -> ClerkAuthError | None:
        if claims.has(role=wanted):
            return None
        if claims.org_id is None:
            found = _NO_ORGANIZATION
        elif claims.org_role is None:
            found = "the session has no role in the active organization"
        else:
            found = f"the active organization role is {claims.org_role}"
        return ClerkAuthError(ErrorReason.ORG_ROLE_REQUIRED, f"requires org role {wanted}; {found}")

    return _guard(f"require_org_role({wanted!r})", check, auth)


def require_org_permission(permission: str, *, auth: ClerkAuth | None = None) -> ClaimsDependency:
    """A dependency that passes when the active organization grants ``permission``
    (``"org:<feature>:<permission>"``; the ``org:`` prefix may be left out).

    Clerk's system permissions (``org:sys_...``) are never in session tokens, so guard with a
    custom permission or a role. Fails with 403 ``org-permission-required``.
    """
    wanted = normalize_org_permission(permission)

    def check(claims: ClerkClaims) -> ClerkAuthError | None:
        if claims.has(permission=wanted):
            return None
        if claims.org_id is None:
            found = _NO_ORGANIZATION
        else:
            found = f"the role {claims.org_role or '(none)'} in the active organization lacks it"
        return ClerkAuthError(
            ErrorReason.ORG_PERMISSION_REQUIRED, f"requires permission {wanted}; {found}"
        )

    return _guard(f"require_org_permission({wanted!r})", check, auth)


# -- billing -----------------------------------------------------------------------------


def _scope_text(requested: ScopedName) -> str:
    if requested.org and requested.user:
        return ""
    return " for the organization" if requested.org else " for the user"


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 120 else repr(value[:117] + "...")


def _billing_guard(
    kind: Literal["feature", "plan"], name: str, reason: ErrorReason, auth: ClerkAuth | None
) -> ClaimsDependency:
    requested = parse_requested_name(name, kind)
    claim_name = "fea" if kind == "feature" else "pla"

    def check(claims: ClerkClaims) -> ClerkAuthError | None:
        claim = claims.fea if kind == "feature" else claims.pla
        if has_scoped_name(claim, requested):
            return None
        if claim:
            found = f"the session's {claim_name} is {_shown(claim)}"
        else:
            found = f"the session token has no {claim_name} claim (is Clerk Billing enabled?)"
        wanted = f"{kind} {requested.name!r}{_scope_text(requested)}"
        return ClerkAuthError(reason, f"requires {wanted}; {found}")

    return _guard(f"require_{kind}({name!r})", check, auth)


def require_feature(name: str, *, auth: ClerkAuth | None = None) -> ClaimsDependency:
    """A dependency that passes when Clerk Billing grants feature ``name`` (the ``fea`` claim).

    ``"dashboard"`` accepts the feature for the user or the organization; ``"o:dashboard"`` /
    ``"org:dashboard"`` only for the organization; ``"u:dashboard"`` / ``"user:dashboard"``
    only for the user. Fails with 403 ``feature-required``.
    """
    return _billing_guard("feature", name, ErrorReason.FEATURE_REQUIRED, auth)


def require_plan(name: str, *, auth: ClerkAuth | None = None) -> ClaimsDependency:
    """A dependency that passes when the active plan (the ``pla`` claim) is ``name``, with the
    same scope rules as :func:`require_feature`. Fails with 403 ``plan-required``."""
    return _billing_guard("plan", name, ErrorReason.PLAN_REQUIRED, auth)


# -- reverification ----------------------------------------------------------------------


def _factor_text(age: int) -> str:
    return "never verified" if age == -1 else f"verified {age} min ago"


def _fva_text(fva: tuple[int, int] | None) -> str:
    if fva is None:
        return "the session token has no valid fva claim"
    first, second = fva
    return f"first factor {_factor_text(first)}, second factor {_factor_text(second)}"


def reverification_error(
    requirement: Reverification, fva: tuple[int, int] | None
) -> ClerkAuthError:
    """The 403 for a failed step-up, with Clerk's ``clerk_error`` object in ``detail``."""
    clerk_error = {
        "type": "forbidden",
        "reason": "reverification-error",
        "metadata": {"reverification": requirement.clerk_metadata()},
    }
    message = (
        f"requires reverification: {requirement.level} within the last "
        f"{requirement.after_minutes} min; {_fva_text(fva)}"
    )
    return ClerkAuthError(
        ErrorReason.REVERIFICATION_REQUIRED, message, extra={"clerk_error": clerk_error}
    )


def require_reverification(
    level: str = "strict", *, after_minutes: int | None = None, auth: ClerkAuth | None = None
) -> ClaimsDependency:
    """A dependency that passes when the user verified recently enough (the ``fva`` claim).

    ``level`` is a Clerk preset, ``strict_mfa`` (multi_factor, 10 min), ``strict``
    (second_factor, 10 min), ``moderate`` (60 min) or ``lax`` (1440 min), or one of
    ``first_factor``, ``second_factor``, ``multi_factor`` together with ``after_minutes``.
    Fails with 403 ``reverification-required``; with :func:`clerk_error_handler` installed the
    body is the ``{"clerk_error": ...}`` that Clerk's frontends answer with a step-up prompt.
    """
    requirement = reverification_requirement(level, after_minutes)

    def check(claims: ClerkClaims) -> ClerkAuthError | None:
        if is_reverified(claims.fva, requirement):
            return None
        return reverification_error(requirement, claims.fva)

    if after_minutes is None:
        name = f"require_reverification({level!r})"
    else:
        name = f"require_reverification(level={level!r}, after_minutes={after_minutes})"
    return _guard(name, check, auth)


# -- OpenAPI -----------------------------------------------------------------------------


class ClerkErrorDetail(BaseModel):
    """Why the request was refused: a reason code and a message for the developer."""

    model_config = ConfigDict(extra="allow")

    reason: ErrorReason
    message: str


class ClerkErrorResponse(BaseModel):
    """The body of a refused request (``clerk_error_handler`` changes only the step-up one)."""

    detail: ClerkErrorDetail


class ClerkReverificationRequirement(BaseModel):
    """The step-up Clerk's frontend should ask for."""

    model_config = ConfigDict(populate_by_name=True)

    level: Literal["first_factor", "second_factor", "multi_factor"]
    after_minutes: int = Field(alias="afterMinutes")


class ClerkReverificationMetadata(BaseModel):
    reverification: ClerkReverificationRequirement


class ClerkReverificationError(BaseModel):
    type: Literal["forbidden"]
    reason: Literal["reverification-error"]
    metadata: ClerkReverificationMetadata


class ClerkReverificationResponse(BaseModel):
    """A failed step-up when ``clerk_error_handler`` is installed: Clerk's own body."""

    clerk_error: ClerkReverificationError


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ClerkErrorResponse,
        "description": "No valid Clerk session token; `detail.reason` says why "
        "(session-token-missing, token-expired, ...).",
        "headers": {
            "WWW-Authenticate": {
                "description": 'Bearer, plus error="invalid_token" when a token was sent',
                "schema": {"type": "string"},
            }
        },
    },
    403: {
        "model": ClerkErrorResponse | ClerkReverificationResponse,
        "description": "Authenticated, but not authorized: org-role-required, "
        "org-permission-required, feature-required, plan-required or reverification-required "
        "(Clerk's clerk_error body when clerk_error_handler is installed).",
    },
}
"""``responses=AUTH_RESPONSES`` on a route, router or app documents the 401 and 403 bodies."""
