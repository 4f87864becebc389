"""What a JSON Web Key Set document holds: ``parse_key_set`` and the RSA key sizes accepted.

Pure parsing, no I/O: shared by the key cache (:mod:`clerk_deps.jwks`) and the command line.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JOSEError

__all__ = ["RSA_KEY_BITS", "parse_key_set"]

# Clerk signs with 2048-bit keys. Weaker keys are forgeable; far larger ones would make every
# signature check slow, so a key set that holds one is misconfigured or hostile.
RSA_KEY_BITS = range(2048, 8192 + 1)


def parse_key_set(document: Any) -> dict[str, Key]:
    """The RSA signing keys with a ``kid`` in a JWKS document, as python-jose key objects.

    Anything else is skipped: other key types, encryption keys, algorithms other than RS256,
    entries without a ``kid``, and keys whose ``n`` / ``e`` are not base64url text or whose
    size is outside :data:`RSA_KEY_BITS`. Only ``n`` and ``e`` are read, so private or extra
    parameters in an entry are never loaded.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return {}
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        public = _public_signing_jwk(entry)
        if public is None:
            continue
        try:
            keys[public["kid"]] = jwk.construct(public, algorithm="RS256")
        except (JOSEError, ValueError, TypeError):
            continue
    return keys


def _public_signing_jwk(entry: Any) -> dict[str, str] | None:
    """``entry`` reduced to ``kty``/``kid``/``n``/``e`` if it is a usable RS256 signing key."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        return None
    kid, n, e = entry.get("kid"), entry.get("n"), entry.get("e")
    # Strings only: python-jose turns a number into bytes(number), so {"e": 10**9} would
    # allocate a gigabyte.
    if not (isinstance(kid, str) and isinstance(n, str) and isinstance(e, str)):
        return None
    if not kid or not 0 < len(e) <= 8 or _bit_length(n) not in RSA_KEY_BITS:
        return None
    return {"kty": "RSA", "kid": kid, "n": n, "e": e}


def _bit_length(value: str) -> int:
    """The size of a base64url-encoded unsigned integer, 0 when it is not base64url."""
    if len(value) > 2048:  # over 12,000 bits: not worth decoding
        return 0
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()
