"""The checks of a verified token's claims, and the claims built in the same pass.

Runs after the signature has verified: types of the registered claims, session (not machine
or template) subject, ``exp``/``nbf``/``iat`` with the leeway, ``iss``, ``aud``, ``azp`` and
the session status. :func:`session_claims` first tries one pass that only accepts a
well-formed token (:meth:`ClaimRules.passes` on the payload read by pydantic-core, then
claims built without pydantic's validation); anything else takes the check-by-check path
(:func:`verified_claims`), which raises the first failed check with its reason. Both accept
exactly the same tokens and build equal claims.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from pydantic import ValidationError

from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .setting_values import issuer_from_publishable_key
from .settings import ClerkSettings
from .token_claims import ValidatedPayload, claims_from_payload
from .token_reading import ReadToken

__all__ = [
    "ClaimRules",
    "check_claim_types",
    "check_claims",
    "check_issuer",
    "check_times",
    "session_claims",
    "verified_claims",
]

_STRING_CLAIMS = ("iss", "sid", "azp", "sts", "jti", "email")
_LIMIT = 2**63  # NumericDates are compared only within 64 bits


class ClaimRules(NamedTuple):
    """What the settings decide about claims, read once per settings object."""

    leeway: float
    verify_iat: bool
    issuer: str | None
    audiences: tuple[str, ...]
    authorized_parties: tuple[str, ...]
    accept_pending_sessions: bool
    accept_jwt_templates: bool

    @classmethod
    def of(cls, settings: ClerkSettings) -> ClaimRules:
        return cls(
            settings.leeway,
            settings.verify_iat,
            settings.issuer,
            settings.audiences,
            tuple(settings.authorized_parties),
            settings.accept_pending_sessions,
            settings.accept_jwt_templates,
        )

    def passes(self, read: ValidatedPayload, now: float) -> bool:
        """Whether a payload :func:`read_payload` accepted (every field has the type the model
        stores; ``nbf`` ``None``: absent) passes every check of :func:`check_claims` for
        certain. ``False`` only means "not certain": the caller runs the checks one by one."""
        fields, others, _ = read
        sub, iat, exp, nbf = fields["sub"], fields["iat"], fields["exp"], fields["nbf"]
        if not sub or sub.startswith("mch_") or not -_LIMIT < iat < _LIMIT:
            return False
        leeway = self.leeway
        if not -_LIMIT < exp < _LIMIT or exp + leeway <= now:
            return False
        if nbf is not None and (not -_LIMIT < nbf < _LIMIT or nbf - leeway > now):
            return False
        if self.verify_iat and iat - leeway > now:
            return False
        if not self.accept_jwt_templates and not fields["sid"]:
            return False
        if self.issuer is not None and fields["iss"] != self.issuer:
            return False
        if self.audiences and not _audience_matches(others.get("aud"), self.audiences):
            return False
        if self.authorized_parties and fields["azp"] not in self.authorized_parties:
            return False
        return self.accept_pending_sessions or fields["sts"] != "pending"


def session_claims(
    token: ReadToken, settings: ClerkSettings, rules: ClaimRules, now: float
) -> tuple[ClerkClaims, float, float | None]:
    """The claims of a token whose signature has verified, after every claim check, with its
    exact ``exp`` and ``nbf``; raises :class:`ClerkAuthError` with the first check that fails.

    A payload read in one pass (``token.read``) that passes in one pass is built at once;
    anything else is decoded as a dict and checked claim by claim."""
    read = token.read
    if read is not None and rules.passes(read, now):
        claims = claims_from_payload(read)
        if claims is not None:
            return claims, read[0]["exp"], read[0]["nbf"]
    payload = token.payload_dict()
    return verified_claims(payload, settings, now), payload["exp"], payload.get("nbf")


def verified_claims(payload: dict[str, Any], settings: ClerkSettings, now: float) -> ClerkClaims:
    """The claims of a payload whose signature has verified, after every claim check; raises
    :class:`ClerkAuthError` with the first check that fails."""
    check_claims(payload, settings, now)
    try:
        return ClerkClaims.from_payload(payload)
    except ValidationError as error:
        fields = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
        raise _invalid(
            ErrorReason.TOKEN_INVALID, f"claims of the wrong type: {', '.join(fields)}"
        ) from None


def check_claims(payload: dict[str, Any], settings: ClerkSettings, now: float) -> None:
    """Every claim check, one by one, in a fixed order; raises the first that fails."""
    check_claim_types(payload)
    _check_subject_type(payload, settings)
    check_times(payload, settings, now)
    check_issuer(payload, settings)
    _check_audience(payload, settings)
    _check_authorized_party(payload, settings)
    _check_session_status(payload, settings)


def _audience_matches(aud: Any, expected: tuple[str, ...]) -> bool:
    presented = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return any(isinstance(a, str) and a in expected for a in presented)


def _invalid(reason: ErrorReason, message: str) -> ClerkAuthError:
    return ClerkAuthError(reason, message)


def _is_number(value: Any) -> bool:
    """A JSON NumericDate we can compare safely: finite and within 64 bits."""
    if type(value) is int:  # the usual case, decided without the checks below
        return -_LIMIT < value < _LIMIT
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < _LIMIT and math.isfinite(value)


def check_claim_types(payload: dict[str, Any]) -> None:
    if "sub" not in payload or "iat" not in payload or "exp" not in payload:
        missing = [name for name in ("sub", "iat", "exp") if name not in payload]
        raise _invalid(ErrorReason.TOKEN_INVALID, f"required claim missing: {', '.join(missing)}")
    for name in ("iat", "exp", "nbf"):
        if name in payload and not _is_number(payload[name]):
            raise _invalid(ErrorReason.TOKEN_INVALID, f"claim '{name}' must be a number")
    if not isinstance(payload["sub"], str) or not payload["sub"]:
        raise _invalid(ErrorReason.TOKEN_INVALID, "claim 'sub' must be a non-empty string")
    for name in _STRING_CLAIMS:
        if payload.get(name) is not None and not isinstance(payload[name], str):
            raise _invalid(ErrorReason.TOKEN_INVALID, f"claim '{name}' must be a string")


def _check_subject_type(payload: dict[str, Any], settings: ClerkSettings) -> None:
    if payload["sub"].startswith("mch_"):
        raise _invalid(
            ErrorReason.TOKEN_TYPE_MISMATCH, "a machine token (sub mch_...) is not a user session"
        )
    if not payload.get("sid") and not settings.accept_jwt_templates:
        raise _invalid(
            ErrorReason.TOKEN_TYPE_MISMATCH,
            "token has no 'sid', so it is not a session token (JWT-template tokens outlive "
            "their session; set CLERK_ACCEPT_JWT_TEMPLATES=true to accept them)",
        )


def check_times(payload: dict[str, Any], settings: ClerkSettings, now: float) -> None:
    leeway = settings.leeway
    exp = payload["exp"]
    if exp + leeway <= now:
        raise _invalid(
            ErrorReason.TOKEN_EXPIRED,
            f"token expired {now - exp:.0f} s ago (leeway {leeway:g} s); Clerk session tokens "
            "live 60 s, so fetch a fresh one right before each call",
        )
    nbf = payload.get("nbf")
    if nbf is not None and nbf - leeway > now:
        raise _invalid(
            ErrorReason.TOKEN_NOT_ACTIVE_YET,
            f"token is not valid for another {nbf - now:.0f} s (nbf, leeway {leeway:g} s); "
            "check this server's clock",
        )
    iat = payload["iat"]
    if settings.verify_iat and iat - leeway > now:
        raise _invalid(
            ErrorReason.TOKEN_IAT_IN_THE_FUTURE,
            f"token was issued {iat - now:.0f} s in the future (iat, leeway {leeway:g} s); "
            "check this server's clock",
        )


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_issuer(payload: dict[str, Any], settings: ClerkSettings) -> None:
    if settings.issuer is None:
        return
    iss = payload.get("iss")
    if iss != settings.issuer:
        raise _invalid(ErrorReason.TOKEN_INVALID_ISSUER, _issuer_message(iss, settings))


def _issuer_message(iss: Any, settings: ClerkSettings) -> str:
    # Runs only after the signature verified, so the token's iss may be shown.
    shown = "missing" if iss is None else _quoted(iss)
    issuer = settings.issuer
    setting = "the issuer of CLERK_PUBLISHABLE_KEY" if _from_key(settings) else "CLERK_ISSUER"
    text = f"iss {shown} does not match {setting} {issuer!r}"
    if isinstance(iss, str) and iss.rstrip("/") == issuer:
        return f"{text}; the token's iss has a trailing slash, which Clerk never sends"
    return (
        f"{text}: the token comes from another Clerk instance. If this app should accept "
        "that instance's tokens, set CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY) to its values; "
        "otherwise the client must sign in to the instance this app is configured for"
    )


def _from_key(settings: ClerkSettings) -> bool:
    """Whether the configured issuer is the one the publishable key names."""
    if settings.publishable_key is None:
        return False
    try:
        return issuer_from_publishable_key(settings.publishable_key) == settings.issuer
    except ValueError:  # pragma: no cover - settings validated the key
        return False


def _check_audience(payload: dict[str, Any], settings: ClerkSettings) -> None:
    expected = settings.audiences
    if not expected:
        return
    aud = payload.get("aud")
    if not _audience_matches(aud, expected):
        shown = "missing" if aud is None else _quoted(aud)
        raise _invalid(
            ErrorReason.TOKEN_INVALID_AUDIENCE,
            f"aud {shown} does not match CLERK_JWT_AUDIENCE; Clerk session tokens carry no "
            "'aud', so leave CLERK_JWT_AUDIENCE unset unless you verify JWT-template tokens",
        )


def _check_authorized_party(payload: dict[str, Any], settings: ClerkSettings) -> None:
    if not settings.authorized_parties:
        return
    azp = payload.get("azp")
    if azp not in settings.authorized_parties:
        shown = "missing" if azp is None else _quoted(azp)
        raise _invalid(
            ErrorReason.TOKEN_INVALID_AUTHORIZED_PARTIES,
            f"azp {shown} is not in CLERK_AUTHORIZED_PARTIES",
        )


def _check_session_status(payload: dict[str, Any], settings: ClerkSettings) -> None:
    if payload.get("sts") == "pending" and not settings.accept_pending_sessions:
        raise _invalid(
            ErrorReason.SESSION_PENDING,
            "the session is pending (the user has tasks to finish, e.g. choosing an "
            "organization); set CLERK_ACCEPT_PENDING_SESSIONS=true to accept it",
        )
