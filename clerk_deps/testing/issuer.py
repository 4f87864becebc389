"""``TestIssuer``: mint Clerk-shaped session tokens with a local key pair."""

from __future__ import annotations

import base64
import inspect
import json
import threading
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..settings import ClerkSettings

__all__ = ["SESSION_CATEGORY", "TEMPLATE_CATEGORY", "TestIssuer", "sign_jwt"]

SESSION_CATEGORY = "cl_B7d4PD111AAA"
TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"
DEFAULT_ISSUER = "https://clerk.test.example"

_keys: dict[int, rsa.RSAPrivateKey] = {}
_keys_lock = threading.Lock()


def shared_private_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """An RSA-2048 key generated once per process per ``slot`` (key generation is slow)."""
    with _keys_lock:
        key = _keys.get(slot)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _keys[slot] = key
        return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def sign_jwt(header: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """An RS256 JWS of ``payload`` with exactly ``header`` (``alg`` is not forced)."""
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


class _IsolatedSettings(ClerkSettings):
    """ClerkSettings that ignore the environment and dotenv files: tests stay reproducible."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class TestIssuer:
    """A stand-in for a Clerk instance: an RSA key pair, a ``kid`` and an issuer URL.

    ``settings()`` trusts it without any network; ``token()`` mints v2 session tokens shaped
    like Clerk's (60 s lifetime, ``nbf`` 10 s back-dated). Keys are generated once per process
    and shared by every ``TestIssuer`` that does not bring its own, so hundreds of tokens in a
    test suite stay fast.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        *,
        issuer: str = DEFAULT_ISSUER,
        kid: str = "ins_test_key",
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.kid = kid
        self.private_key = private_key or shared_private_key(0)

    def __repr__(self) -> str:
        return f"TestIssuer(issuer={self.issuer!r}, kid={self.kid!r})"

    @property
    def public_pem(self) -> str:
        """The public key as PEM text, the form ``CLERK_JWT_KEY`` takes."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def settings(self, **overrides: Any) -> ClerkSettings:
        """Settings that trust this issuer (networkless), ignoring environment and dotenv files."""
        values: dict[str, Any] = {"issuer": self.issuer, "jwt_key": self.public_pem}
        values.update(overrides)
        return _IsolatedSettings(**values)

    # FastAPI reads a dependency's signature to find its parameters; showing none lets
    # ``app.dependency_overrides[get_settings] = issuer.settings`` work as written.
    settings.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )

    def jwks(self) -> dict[str, Any]:
        """The public key set (``{"keys": [...]}``), as Clerk serves it."""
        numbers = self.private_key.public_key().public_numbers()

        def encode(value: int) -> str:
            return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        jwk = {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": encode(numbers.n),
            "e": encode(numbers.e),
        }
        return {"keys": [jwk]}

    def claims(self, sub: str = "user_test", **claims: Any) -> dict[str, Any]:
        """The payload ``token()`` would sign; ``None`` values remove a claim."""
        now = int(claims.pop("now", None) or time.time())
        payload: dict[str, Any] = {
            "sub": sub,
            "sid": f"sess_{uuid.uuid4().hex[:24]}",
            "iat": now,
            "nbf": now - 10,
            "exp": now + 60,
            "iss": self.issuer,
            "jti": uuid.uuid4().hex[:20],
            "v": 2,
            "fva": [0, -1],
        }
        payload.update(claims)
        return {name: value for name, value in payload.items() if value is not None}

    def header(self, **fields: Any) -> dict[str, Any]:
        """The JOSE header ``token()`` uses; ``None`` values remove a field."""
        header: dict[str, Any] = {
            "alg": "RS256",
            "cat": SESSION_CATEGORY,
            "kid": self.kid,
            "typ": "JWT",
        }
        header.update(fields)
        return {name: value for name, value in header.items() if value is not None}

    def token(
        self, sub: str = "user_test", *, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A signed session token. Keywords add or replace claims (``None`` removes one);
        ``headers`` does the same for the JOSE header; ``now=`` sets the issue time."""
        return sign_jwt(
            self.header(**(headers or {})), self.claims(sub, **claims), self.private_key
        )

    def expired_token(
        self, sub: str = "user_test", *, seconds_ago: int = 120, **claims: Any
    ) -> str:
        """A token that expired ``seconds_ago`` seconds ago (well past any leeway)."""
        now = int(time.time()) - seconds_ago - 60
        return self.token(sub, now=now, **claims)

    def forged_token(self, sub: str = "user_test", **claims: Any) -> str:
        """A token with this issuer's ``kid`` and claims, signed by a different key."""
        return sign_jwt(self.header(), self.claims(sub, **claims), shared_private_key(1))
