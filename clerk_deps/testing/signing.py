"""Signing keys and JWS signing for tests: the key pairs every test issuer shares.

Owns the per-process RSA keys (one per slot, generated once: key generation is slow), their
Clerk-style ``kid``, RS256 signing of a header and payload into a compact JWT, and the public
half of a key as a JWK or as PEM text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "FORGER_SLOT",
    "INSTANCE_SLOTS",
    "ISSUER_SLOT",
    "key_id_for",
    "public_jwk",
    "public_pem",
    "shared_private_key",
    "sign_jwt",
]

# Key slots: 0 signs for TestIssuer, 1 forges, 2 and up are FakeClerk's (one per rotation),
# 1000 and up are the instances of TestIssuer.several().
ISSUER_SLOT = 0
FORGER_SLOT = 1
INSTANCE_SLOTS = 1000

_keys: dict[int, rsa.RSAPrivateKey] = {}
_keys_lock = threading.Lock()


def shared_private_key(slot: int = ISSUER_SLOT) -> rsa.RSAPrivateKey:
    """An RSA-2048 key generated once per process per ``slot`` (key generation is slow)."""
    with _keys_lock:
        key = _keys.get(slot)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _keys[slot] = key
        return key


def key_id_for(key: rsa.RSAPrivateKey) -> str:
    """A stable ``kid`` for ``key`` in Clerk's style (``ins_...``), derived from its modulus."""
    modulus = key.public_key().public_numbers().n
    digest = hashlib.sha256(modulus.to_bytes((modulus.bit_length() + 7) // 8, "big"))
    return f"ins_{digest.hexdigest()[:24]}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def sign_jwt(header: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """An RS256 JWS of ``payload`` with exactly ``header`` (``alg`` is not forced)."""
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half of ``key`` as a JWK, with the fields Clerk's key sets carry."""
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {
        "use": "sig",
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "n": encode(numbers.n),
        "e": encode(numbers.e),
    }


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half of ``key`` as PEM text, the form ``CLERK_JWT_KEY`` takes."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
