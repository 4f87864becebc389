"""Rows that time one verification: the floor, and ``verify_token`` cold and warm.

``verify_token`` is a coroutine function that does not suspend when the key is at hand
(``CLERK_JWT_KEY``, or a key set already fetched), so each call is driven with
``coro.send(None)``: exactly the work ``await verify_token(...)`` costs inside a request,
without timing an event loop.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from harness import Measurement, drive, forget_verified_tokens, share

from clerk_deps import ClerkSettings, verify_token


def _signed_parts(tokens: Sequence[str]) -> list[tuple[bytes, bytes]]:
    """Each token's signature and signing input, decoded (untimed)."""
    parts = []
    for token in tokens:
        header, payload, signature = token.split(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        parts.append((raw, f"{header}.{payload}".encode("ascii")))
    return parts


def floor(public_key: rsa.RSAPublicKey, tokens: Sequence[str]) -> Measurement:
    """The floor: ``cryptography``'s RS256 check (``public_key.verify`` with PKCS1v15 and
    SHA256, the call python-jose and PyJWT make) of each token's signature over its signing
    input, both decoded ahead of timing."""
    parts = _signed_parts(tokens)
    verify, pkcs1, sha256 = public_key.verify, padding.PKCS1v15(), hashes.SHA256()

    def run(part: int, of: int) -> int:
        inputs = share(parts, part, of)
        for signature, signing_input in inputs:
            verify(signature, signing_input, pkcs1, sha256)
        return len(inputs)

    return Measurement("floor", run)


def signature_check(public_pem: str, tokens: Sequence[str]) -> Measurement:
    """The RS256 check as ``verify_token`` makes it, on the floor's inputs (a reference for
    the cold row): RFC 8017's "encode and compare", the signature opened with the public key
    (OpenSSL checks its padding) and compared with the DigestInfo of SHA-256 over the signing
    input. It accepts exactly what the floor's call accepts, and costs a little less."""
    from jose.backends.cryptography_backend import CryptographyRSAKey

    from clerk_deps.tokens import _signature_verifies

    parts = _signed_parts(tokens)
    key = CryptographyRSAKey(public_pem, "RS256")

    def run(part: int, of: int) -> int:
        inputs = share(parts, part, of)
        for signature, signing_input in inputs:
            if not _signature_verifies(key, signing_input, signature):
                raise RuntimeError("a bench token failed its signature check")
        return len(inputs)

    return Measurement("signature", run)


def verify_cold(settings: ClerkSettings, tokens: Sequence[str]) -> Measurement:
    """Cold: each call verifies a token it has never seen (every verified-token cache is
    emptied before each part, untimed). Includes remembering the result in the cache."""

    def run(part: int, of: int) -> int:
        inputs = share(tokens, part, of)
        for token in inputs:
            drive(verify_token(token, settings))
        return len(inputs)

    return Measurement("cold", run, lambda part, of: forget_verified_tokens())


def verify_warm(
    settings: ClerkSettings, token: str, iterations: int, name: str = "warm"
) -> Measurement:
    """Warm: one token again and again (a browser's next requests within the token's minute):
    a cache hit, with ``exp``/``nbf`` checked again on each call."""
    batch = [token] * iterations

    def run(part: int, of: int) -> int:
        inputs = share(batch, part, of)
        for same in inputs:
            drive(verify_token(same, settings))
        return len(inputs)

    return Measurement(name, run, lambda part, of: drive(verify_token(token, settings)))
