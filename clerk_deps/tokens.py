"""``verify_token``: the framework-free core.

Checks run in a fixed order, cheapest and least revealing first: size and shape (canonical
base64url), the header (``crit``, ``alg``, ``typ``, ``cat``: a token of the wrong kind costs no
key fetch), key lookup, signature, then claims. Until the signature has verified, nothing about
the token's claims is used or reported. The algorithm is fixed to RS256 and never read from
the token. The size, shape and decoding steps live in :mod:`clerk_deps.jws`; this module owns
the header checks, the signature check and the claim checks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose.backends.base import Key
from pydantic import ValidationError

from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .jws import MAX_JSON_DEPTH, MAX_TOKEN_BYTES, DecodedJwt, decode_unverified, remember_header
from .keys import KeySource
from .session_status import enforce_revocation
from .setting_values import issuer_from_publishable_key
from .settings import ClerkSettings, get_settings
from .token_cache import TokenCache, selected_for

# MAX_*, DecodedJwt and decode_unverified live in .jws; re-exported for existing imports.
__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_BYTES",
    "DecodedJwt",
    "decode_unverified",
    "verify_prepared",
    "verify_signed_jwt",
    "verify_token",
]

SESSION_CATEGORIES = frozenset({"cl_B7d4PD111AAA", "cl_I7d4PD111III"})
TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"
_WITH_TEMPLATES = SESSION_CATEGORIES | {TEMPLATE_CATEGORY}

_STRING_CLAIMS = ("iss", "sid", "azp", "sts", "jti", "email")

Clock = Callable[[], float]


async def verify_token(
    token: str, settings: ClerkSettings | None = None, *, clock: Clock = time.time
) -> ClerkClaims:
    """Verify a Clerk session token and return its claims.

    Raises :class:`ClerkAuthError` with the reason code of contract section 3. ``settings``
    defaults to :func:`get_settings`; ``clock`` (seconds since the epoch) is for tests.
    A token that passed every check is remembered until it expires (``token_cache_size``),
    so a repeated token skips the signature check but never the expiry check.
    """
    if settings is None:
        settings = get_settings()
    source, cache = selected_for(settings)
    return await verify_prepared(token, settings, source, cache, clock())


async def verify_prepared(
    token: str,
    settings: ClerkSettings,
    source: KeySource,
    cache: TokenCache | None,
    now: float,
) -> ClerkClaims:
    """:func:`verify_token` with the key source and token cache of ``settings`` already
    looked up (``ClerkAuth`` does that once per instance instead of once per request).

    Every verification, cached or not, goes through here: a check that applies to every
    accepted token belongs in this function, not in :func:`verify_token`.
    """
    key_version = source.version
    # A hit is served only while the keys are trusted; a key set due for a refresh makes this
    # request verify afresh, which refreshes it (a dropped key then fails as jwk-kid-mismatch).
    if cache is not None and source.trusts_cached():
        cached = cache.get(token, now, key_version)
        if cached is not None:
            if settings.revocation != "off":
                await enforce_revocation(cached, settings, now)
            return cached
    claims, payload = await _verify(token, settings, source, now)
    if cache is not None:
        cache.put(token, claims, key_version, exp=payload["exp"], nbf=payload.get("nbf"))
    if settings.revocation != "off":
        await enforce_revocation(claims, settings, now)
    return claims


async def _verify(
    token: str, settings: ClerkSettings, source: KeySource, now: float
) -> tuple[ClerkClaims, dict[str, Any]]:
    header, payload, signing_input, signature = decode_unverified(token)
    _check_critical(header)
    _check_algorithm(header)
    _check_header_type(header, settings)  # before the key lookup: a wrong kind costs no fetch
    kid = header.get("kid")
    key = await source.get_key(kid if isinstance(kid, str) else None)
    if not _signature_verifies(key, signing_input, signature):
        raise _invalid(ErrorReason.TOKEN_INVALID_SIGNATURE, _signature_hint(settings))
    _check_claim_types(payload)
    _check_subject_type(payload, settings)
    _check_times(payload, settings, now)
    _check_issuer(payload, settings)
    _check_audience(payload, settings)
    _check_authorized_party(payload, settings)
    _check_session_status(payload, settings)
    try:
        claims = ClerkClaims.from_payload(payload)
    except ValidationError as error:
        fields = sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})
        raise _invalid(
            ErrorReason.TOKEN_INVALID, f"claims of the wrong type: {', '.join(fields)}"
        ) from None
    remember_header(token, header)
    return claims, payload


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _signature_verifies(key: Key, signing_input: bytes, signature: bytes) -> bool:
    """RS256 with ``cryptography`` on the key python-jose prepared (its own ``verify`` wraps
    the same call and builds the padding and hash objects anew on every call)."""
    public_key = getattr(key, "prepared_key", None)
    if not isinstance(public_key, rsa.RSAPublicKey):
        return bool(key.verify(signing_input, signature))
    try:
        public_key.verify(signature, signing_input, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def _invalid(reason: ErrorReason, message: str) -> ClerkAuthError:
    return ClerkAuthError(reason, message)


def _check_critical(header: dict[str, Any]) -> None:
    # RFC 7515 4.1.11: a token whose "crit" names extensions the recipient does not implement
    # is invalid. Clerk sends none, and this verifier implements none.
    if "crit" in header:
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            "header 'crit' names extensions this verifier does not support",
        )


def _check_algorithm(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if alg != "RS256":
        shown = repr(alg)[:20] if isinstance(alg, str) else "missing or not a string"
        raise _invalid(
            ErrorReason.TOKEN_INVALID_ALGORITHM,
            f"header alg {shown} is not allowed; Clerk session tokens are signed with RS256",
        )


def _signature_hint(settings: ClerkSettings) -> str:
    if settings.key_source_name == "jwt_key":
        return (
            "signature does not verify with CLERK_JWT_KEY; the key may belong to another "
            "Clerk instance or have been rotated (use the key set URL via CLERK_ISSUER)"
        )
    return "signature does not verify with the key of this kid"


# -- claims ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """A JSON NumericDate we can compare safely: finite and within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 2**63 and math.isfinite(value)


def _check_claim_types(payload: dict[str, Any]) -> None:
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


def _check_header_type(header: dict[str, Any], settings: ClerkSettings) -> None:
    category = header.get("cat")
    accepted = _WITH_TEMPLATES if settings.accept_jwt_templates else SESSION_CATEGORIES
    if category is not None and (not isinstance(category, str) or category not in accepted):
        kind = "a JWT-template" if category == TEMPLATE_CATEGORY else "not a session"
        hint = " (set CLERK_ACCEPT_JWT_TEMPLATES=true to accept it)" if kind[0] == "a" else ""
        raise _invalid(ErrorReason.TOKEN_TYPE_MISMATCH, f"token category is {kind} token{hint}")
    typ = header.get("typ", "JWT")
    if typ != "JWT":
        if isinstance(typ, str) and typ.lower() in ("at+jwt", "application/at+jwt"):
            raise _invalid(
                ErrorReason.TOKEN_TYPE_MISMATCH,
                "an OAuth access token (typ at+jwt) is not a session token",
            )
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            "header typ must be absent or exactly 'JWT' on a Clerk session token",
        )


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


def _check_times(payload: dict[str, Any], settings: ClerkSettings, now: float) -> None:
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


def _check_issuer(payload: dict[str, Any], settings: ClerkSettings) -> None:
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
    presented = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in expected for a in presented):
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


# -- shared with machine tokens (machine_verify.py); the session path above does not use it --


async def verify_signed_jwt(decoded: DecodedJwt, settings: ClerkSettings, now: float) -> None:
    """The checks every Clerk JWT passes, session or machine token, in :func:`verify_token`'s
    order: ``crit``, ``alg``, key lookup (the instance's shared key source), signature, the
    types of ``sub``/``iat``/``exp``, the times with the leeway, and ``iss``."""
    header, payload, signing_input, signature = decoded
    _check_critical(header)
    _check_algorithm(header)
    kid = header.get("kid")
    source, _ = selected_for(settings)  # the instance's shared key source
    key = await source.get_key(kid if isinstance(kid, str) else None)
    if not _signature_verifies(key, signing_input, signature):
        raise _invalid(ErrorReason.TOKEN_INVALID_SIGNATURE, _signature_hint(settings))
    _check_claim_types(payload)
    _check_times(payload, settings, now)
    _check_issuer(payload, settings)
