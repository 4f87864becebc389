"""``verify_token``: the framework-free core.

Checks run in a fixed order, cheapest and least revealing first: size and shape (canonical
base64url), the header (``crit``, ``alg``, ``typ``, ``cat``: a token of the wrong kind costs no
key fetch), key lookup, signature, then claims. Until the signature has verified, nothing about
the token's claims is used or reported. The algorithm is fixed to RS256 and never read from
the token. The size, shape and decoding steps live in :mod:`clerk_deps.jws`; this module owns
the header checks, the signature check and the claim checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from hashlib import sha256
from hmac import compare_digest
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose.backends.base import Key

from .claim_checks import check_claim_types, check_issuer, check_times, session_claims
from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason
from .jws import (
    MAX_JSON_DEPTH,
    MAX_TOKEN_BYTES,
    DecodedJwt,
    decode_unverified,
    remember_header,
)
from .keys import KeySource
from .session_status import enforce_revocation
from .settings import ClerkSettings, get_settings
from .token_cache import Prepared, selected_for
from .token_reading import ReadToken, read_token

# MAX_*, DecodedJwt and decode_unverified live in .jws, ReadToken and read_token in
# .token_reading; re-exported for existing imports.
__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_BYTES",
    "DecodedJwt",
    "ReadToken",
    "decode_unverified",
    "read_token",
    "verify_prepared",
    "verify_signed_jwt",
    "verify_token",
]

SESSION_CATEGORIES = frozenset({"cl_B7d4PD111AAA", "cl_I7d4PD111III"})
TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"
_WITH_TEMPLATES = SESSION_CATEGORIES | {TEMPLATE_CATEGORY}

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
    return await verify_prepared(token, settings, selected_for(settings), clock())


async def verify_prepared(
    token: str,
    settings: ClerkSettings,
    prepared: Prepared,
    now: float,
    token_read: ReadToken | None = None,
) -> ClerkClaims:
    """:func:`verify_token` with the key source, token cache and claim rules of ``settings``
    already looked up (``ClerkAuth`` does that once per instance instead of once per request),
    and optionally the token already read (:func:`read_token`).

    Every verification, cached or not, goes through here: a check that applies to every
    accepted token belongs in this function, not in :func:`verify_token`.
    """
    source, cache, rules = prepared
    key_version = source.version
    # A hit is served only while the keys are trusted; a key set due for a refresh makes this
    # request verify afresh, which refreshes it (a dropped key then fails as jwk-kid-mismatch).
    if cache is not None and source.trusts_cached():
        cached = cache.get(token, now, key_version)
        if cached is not None:
            if settings.revocation != "off":
                await enforce_revocation(cached, settings, now)
            return cached
    token_read = token_read or read_token(token)
    header = token_read.header
    if not _header_passes(header, rules.accept_jwt_templates):
        # before the key lookup: a token of the wrong kind costs no fetch
        _check_critical(header)
        _check_algorithm(header)
        _check_header_type(header, settings)
    kid = header.get("kid")
    key = _key_at_hand(source, kid)
    if key is None:
        key = await source.get_key(kid if isinstance(kid, str) else None)
        key_version = source.version  # the key set the key came from (it may just have loaded)
    if not _signature_verifies(key, token_read.signing_input, token_read.signature):
        raise _invalid(ErrorReason.TOKEN_INVALID_SIGNATURE, _signature_hint(settings))
    claims, exp, nbf = session_claims(token_read, settings, rules, now)
    remember_header(token, header)
    if cache is not None:
        cache.put(token, claims, key_version, exp=exp, nbf=nbf)
    if settings.revocation != "off":
        await enforce_revocation(claims, settings, now)
    return claims


def _key_at_hand(source: KeySource, kid: Any) -> Key | None:
    """A key at hand (fetched and fresh) is used without awaiting; ``None``: await get_key."""
    return source.key_at_hand(kid) if type(kid) is str and kid else None


_PKCS1V15 = padding.PKCS1v15()
# DER of DigestInfo(sha256) up to the digest itself (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


# Per verification key: the bound recover method of its cryptography RSA key and the
# signature length its modulus takes. Holds the keys (so an id is never reused while stored);
# a key set holds a few keys, and rotations add a few more: emptied when full.
_RS256_KEYS: dict[int, tuple[Key, Callable[..., bytes], int]] = {}
_RS256_KEYS_MAX = 64


def _signature_verifies(key: Key, signing_input: bytes, signature: bytes) -> bool:
    """RS256 (RSASSA-PKCS1-v1_5 with SHA-256) on the ``cryptography`` key python-jose
    prepared, by RFC 8017 section 8.2.2: the signature must be exactly as long as the modulus;
    opened with the public key, its PKCS #1 v1.5 padding is checked by OpenSSL (``00 01``, at
    least eight ``FF``, ``00``) and what it carries must be, byte for byte, the DigestInfo of
    SHA-256 over the signing input. Equivalent to ``public_key.verify(..., PKCS1v15(),
    SHA256())``, and cheaper: OpenSSL is not asked to look the digest up again per call."""
    known = _RS256_KEYS.get(id(key))
    if known is None or known[0] is not key:
        public_key = getattr(key, "prepared_key", None)
        if not isinstance(public_key, rsa.RSAPublicKey):
            return bool(key.verify(signing_input, signature))
        if len(_RS256_KEYS) >= _RS256_KEYS_MAX:
            _RS256_KEYS.clear()
        size = (public_key.key_size + 7) >> 3
        known = _RS256_KEYS[id(key)] = (key, public_key.recover_data_from_signature, size)
    if len(signature) != known[2]:
        return False  # a shorter spelling of the same number is another token: refused
    try:
        carried = known[1](signature, _PKCS1V15, None)
    except InvalidSignature:
        return False
    return compare_digest(carried, _SHA256_DIGEST_INFO + sha256(signing_input).digest())


def _invalid(reason: ErrorReason, message: str) -> ClerkAuthError:
    return ClerkAuthError(reason, message)


def _header_passes(header: dict[str, Any], accept_jwt_templates: bool) -> bool:
    """Whether the header passes the three checks below for certain (a Clerk session token's
    header does); ``False`` only means "not certain": the caller runs them one by one."""
    if "crit" in header or header.get("alg") != "RS256" or header.get("typ", "JWT") != "JWT":
        return False
    category = header.get("cat")
    accepted = _WITH_TEMPLATES if accept_jwt_templates else SESSION_CATEGORIES
    return category is None or (type(category) is str and category in accepted)


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


# -- shared with machine tokens (machine_verify.py); the session path above does not use it --


async def verify_signed_jwt(decoded: DecodedJwt, settings: ClerkSettings, now: float) -> None:
    """The checks every Clerk JWT passes, session or machine token, in :func:`verify_token`'s
    order: ``crit``, ``alg``, key lookup (the instance's shared key source), signature, the
    types of ``sub``/``iat``/``exp``, the times with the leeway, and ``iss``."""
    header, payload, signing_input, signature = decoded
    _check_critical(header)
    _check_algorithm(header)
    kid = header.get("kid")
    source = selected_for(settings).source  # the instance's shared key source
    key = _key_at_hand(source, kid) or await source.get_key(kid if isinstance(kid, str) else None)
    if not _signature_verifies(key, signing_input, signature):
        raise _invalid(ErrorReason.TOKEN_INVALID_SIGNATURE, _signature_hint(settings))
    check_claim_types(payload)
    check_times(payload, settings, now)
    check_issuer(payload, settings)
    remember_header(signing_input, header)
