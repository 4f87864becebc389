"""Reason codes, the one exception type, and an optional exception handler.

Every failure in this package is a :class:`ClerkAuthError`. It is a FastAPI ``HTTPException``,
so FastAPI's default handler already renders it as ``{"detail": {"reason": ..., "message": ...}}``;
the optional :func:`clerk_error_handler` also speaks Clerk's own body for a failed step-up.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


class ErrorReason(str, Enum):
    """Why a request was refused. The value is the code clients see in ``detail.reason``."""

    SESSION_TOKEN_MISSING = "session-token-missing"
    TOKEN_INVALID = "token-invalid"
    TOKEN_INVALID_ALGORITHM = "token-invalid-algorithm"
    JWK_KID_MISMATCH = "jwk-kid-mismatch"
    TOKEN_INVALID_SIGNATURE = "token-invalid-signature"
    TOKEN_EXPIRED = "token-expired"
    TOKEN_NOT_ACTIVE_YET = "token-not-active-yet"
    TOKEN_IAT_IN_THE_FUTURE = "token-iat-in-the-future"
    TOKEN_INVALID_ISSUER = "token-invalid-issuer"
    TOKEN_INVALID_AUDIENCE = "token-invalid-audience"
    TOKEN_INVALID_AUTHORIZED_PARTIES = "token-invalid-authorized-parties"
    TOKEN_TYPE_MISMATCH = "token-type-mismatch"
    SESSION_PENDING = "session-pending"
    JWK_FAILED_TO_LOAD = "jwk-failed-to-load"
    AUTH_NOT_CONFIGURED = "auth-not-configured"
    ORG_ROLE_REQUIRED = "org-role-required"
    ORG_PERMISSION_REQUIRED = "org-permission-required"
    REVERIFICATION_REQUIRED = "reverification-required"
    FEATURE_REQUIRED = "feature-required"
    PLAN_REQUIRED = "plan-required"
    SESSION_REVOKED = "session-revoked"
    WEBHOOK_INVALID = "webhook-invalid"
    SESSION_STATUS_UNAVAILABLE = "session-status-unavailable"
    TOKEN_REVOKED = "token-revoked"
    SCOPE_REQUIRED = "scope-required"
    MACHINE_VERIFICATION_UNAVAILABLE = "machine-verification-unavailable"
    ORIGIN_NOT_ALLOWED = "origin-not-allowed"

    def __str__(self) -> str:
        return self.value


_FORBIDDEN = frozenset(
    {
        ErrorReason.ORG_ROLE_REQUIRED,
        ErrorReason.ORG_PERMISSION_REQUIRED,
        ErrorReason.REVERIFICATION_REQUIRED,
        ErrorReason.FEATURE_REQUIRED,
        ErrorReason.PLAN_REQUIRED,
        ErrorReason.SCOPE_REQUIRED,
        ErrorReason.ORIGIN_NOT_ALLOWED,
    }
)


def status_for(reason: ErrorReason) -> int:
    """The HTTP status the contract assigns to ``reason``."""
    if reason in _FORBIDDEN:
        return 403
    if reason is ErrorReason.JWK_FAILED_TO_LOAD:
        return 503
    if reason is ErrorReason.SESSION_STATUS_UNAVAILABLE:
        return 503
    if reason is ErrorReason.WEBHOOK_INVALID:
        return 400
    if reason is ErrorReason.MACHINE_VERIFICATION_UNAVAILABLE:
        return 503
    if reason is ErrorReason.AUTH_NOT_CONFIGURED:
        return 500
    return 401


class ClerkAuthError(HTTPException):
    """A refused request: ``.reason`` says why, ``.message`` says how to fix it.

    The message is written for the developer reading the response or the log. It never holds
    the token, a secret, or a claim value from a token whose signature did not verify.
    """

    reason: ErrorReason
    message: str

    def __init__(
        self,
        reason: ErrorReason,
        message: str,
        *,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        status_code = status_for(reason)
        detail: dict[str, Any] = {"reason": reason.value, "message": message}
        if extra:
            detail.update(extra)
        super().__init__(
            status_code=status_code, detail=detail, headers=_headers(reason, retry_after)
        )
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.status_code} {self.reason.value}: {self.message}"

    def __repr__(self) -> str:
        return f"ClerkAuthError(reason={self.reason.value!r}, status_code={self.status_code})"


def _headers(reason: ErrorReason, retry_after: int | None) -> dict[str, str] | None:
    if reason is ErrorReason.SESSION_TOKEN_MISSING:
        return {"WWW-Authenticate": "Bearer"}
    if status_for(reason) == 401:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if retry_after is not None:
        return {"Retry-After": str(retry_after)}
    return None


async def clerk_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Render a :class:`ClerkAuthError`; install with ``app.add_exception_handler``.

    The body is ``{"detail": {"reason", "message", ...}}`` as without the handler, except for
    a failed step-up, which gets exactly the ``{"clerk_error": ...}`` body that Clerk's
    frontend SDKs recognise and answer by asking the user to verify again.
    """
    if not isinstance(exc, ClerkAuthError):  # pragma: no cover - registered for ClerkAuthError
        raise exc
    detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
    clerk_error = detail.get("clerk_error")
    body: dict[str, Any] = {"clerk_error": clerk_error} if clerk_error else {"detail": detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
