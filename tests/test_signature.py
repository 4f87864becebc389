"""RS256 by "encode and compare" (RFC 8017 section 8.2.2) accepts exactly what
``cryptography``'s ``verify`` accepts: well-formed signatures, and nothing else, on signatures
made with the private key over well-formed and malformed encodings alike."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose.backends.cryptography_backend import CryptographyRSAKey

from clerk_deps import ClerkAuthError, ErrorReason, verify_token
from clerk_deps import tokens as tokens_module
from clerk_deps.testing import TestIssuer

ISSUER = TestIssuer()

KEY = CryptographyRSAKey(ISSUER.public_pem, "RS256")
PUBLIC = ISSUER.private_key.public_key()
MESSAGE = b"header.payload"
DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def raw_rsa_signature(encoded: bytes) -> bytes:
    """``encoded`` (an EM of the modulus' length) raised to the private exponent: a signature
    over any padding, well-formed or not."""
    numbers = ISSUER.private_key.private_numbers()
    n = numbers.public_numbers.n
    value = pow(int.from_bytes(encoded, "big"), numbers.d, n)
    return value.to_bytes(256, "big")


def encoded(digest_info: bytes, ff_count: int | None = None, block: bytes = b"\x01") -> bytes:
    fill = 256 - 3 - len(digest_info) if ff_count is None else ff_count
    em = b"\x00" + block + b"\xff" * fill + b"\x00" + digest_info
    return em.rjust(256, b"\x00")[:256]


def cryptography_verifies(signing_input: bytes, signature: bytes) -> bool:
    try:
        PUBLIC.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def assert_same_verdict(signing_input: bytes, signature: bytes) -> bool:
    verdict = tokens_module._signature_verifies(KEY, signing_input, signature)
    assert verdict == cryptography_verifies(signing_input, signature)
    return verdict


def test_the_signature_check_accepts_what_cryptography_accepts() -> None:
    digest = hashlib.sha256(MESSAGE).digest()
    good = ISSUER.private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert raw_rsa_signature(encoded(DIGEST_INFO + digest)) == good
    assert assert_same_verdict(MESSAGE, good)
    sha384 = ISSUER.private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA384())
    refused = [
        (MESSAGE + b"x", good),
        (MESSAGE, sha384),  # another digest's DigestInfo
        (MESSAGE, b"\x00" + good),  # longer than the modulus
        (MESSAGE, good[:-1]),
        (MESSAGE, b""),
        (MESSAGE, bytes(256)),
        (MESSAGE, b"\xff" * 256),  # not below the modulus
        (MESSAGE, raw_rsa_signature(encoded(digest))),  # the digest without its DigestInfo
        (MESSAGE, raw_rsa_signature(encoded(DIGEST_INFO + digest + b"\x00"))),
        (MESSAGE, raw_rsa_signature(encoded(DIGEST_INFO[:-1] + b"\x21" + digest))),
        (MESSAGE, raw_rsa_signature(encoded(DIGEST_INFO + digest, block=b"\x02"))),
        (MESSAGE, raw_rsa_signature(encoded(DIGEST_INFO + digest, ff_count=7))),
        (MESSAGE, raw_rsa_signature(b"\x01" + encoded(DIGEST_INFO + digest)[1:])),
    ]
    for signing_input, signature in refused:
        assert not assert_same_verdict(signing_input, signature), signature.hex()[:16]


def test_a_signature_without_its_leading_zero_bytes_is_refused() -> None:
    # 1 in 256 signatures starts with a zero byte; the same number spelled in fewer bytes
    # would be a second token for one signature
    for index in range(4096):
        message = b"message %d" % index
        signature = ISSUER.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        if signature[0] == 0:
            break
    else:  # pragma: no cover - about e**-16
        pytest.fail("no signature with a leading zero byte")
    assert assert_same_verdict(message, signature)
    assert not assert_same_verdict(message, signature.lstrip(b"\x00"))


async def test_a_token_whose_signature_is_spelled_shorter_is_refused() -> None:
    for index in range(4096):
        token = ISSUER.token(f"user_{index}")
        head, body, signature = token.split(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        if raw[0] == 0:
            break
    else:  # pragma: no cover - about e**-16
        pytest.fail("no signature with a leading zero byte")
    shorter = base64.urlsafe_b64encode(raw.lstrip(b"\x00")).rstrip(b"=").decode()
    with pytest.raises(ClerkAuthError) as refused:
        await verify_token(f"{head}.{body}.{shorter}", ISSUER.settings())
    assert refused.value.reason is ErrorReason.TOKEN_INVALID_SIGNATURE


def test_the_digest_info_is_the_one_cryptography_signs() -> None:
    good = ISSUER.private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    carried = PUBLIC.recover_data_from_signature(good, padding.PKCS1v15(), None)
    assert carried == tokens_module._SHA256_DIGEST_INFO + hashlib.sha256(MESSAGE).digest()


def test_remembered_keys_are_bounded_and_each_verifies_with_its_own_modulus() -> None:
    good = ISSUER.private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_key = CryptographyRSAKey(TestIssuer(private_key=small).public_pem, "RS256")
    small_signature = small.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    keys = [CryptographyRSAKey(ISSUER.public_pem, "RS256") for _ in range(70)]
    for key in keys:
        assert tokens_module._signature_verifies(key, MESSAGE, good)
        assert not tokens_module._signature_verifies(key, MESSAGE + b"x", good)
        assert not tokens_module._signature_verifies(key, MESSAGE, small_signature)
        assert tokens_module._signature_verifies(small_key, MESSAGE, small_signature)
        assert not tokens_module._signature_verifies(small_key, MESSAGE, good)
    assert 0 < len(tokens_module._RS256_KEYS) <= tokens_module._RS256_KEYS_MAX < len(keys)
