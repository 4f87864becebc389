"""``TestIssuer``: mint Clerk-shaped session tokens with a local key pair.

A token from :meth:`TestIssuer.token` has the shape of a current (v2) Clerk session token:
header ``alg``/``kid``/``typ``/``cat``, claims ``sub``, ``sid``, ``iat``, ``nbf = iat - 10``,
``exp = iat + 60``, ``iss``, ``jti``, ``v: 2`` and ``fva``. Organization data is written the way
Clerk writes it (the ``o`` object and ``fea``), so the same decoding runs in tests as in
production.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..settings import ClerkSettings

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_KID",
    "M2M_CATEGORY",
    "SESSION_CATEGORY",
    "TEMPLATE_CATEGORY",
    "TestIssuer",
    "encode_organization",
    "key_id_for",
    "shared_private_key",
    "sign_jwt",
]

SESSION_CATEGORY = "cl_B7d4PD111AAA"
TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"
M2M_CATEGORY = "cl_B7d4PD333AAA"
DEFAULT_ISSUER = "https://clerk.test.example"
DEFAULT_KID = "ins_test_key"
SESSION_LIFETIME = 60
CLOCK_SKEW = 10  # Clerk back-dates nbf by the instance's allowed clock skew

# Key slots: 0 signs for TestIssuer, 1 forges, 2 and up are FakeClerk's (one per rotation),
# 1000 and up are the instances of TestIssuer.several().
ISSUER_SLOT = 0
FORGER_SLOT = 1
INSTANCE_SLOTS = 1000

_keys: dict[int, rsa.RSAPrivateKey] = {}
_keys_lock = threading.Lock()

# Feature scopes that carry organization permissions (Clerk: o, org, organization, ou, uo).
_ORG_SCOPES = frozenset({"o", "org", "organization", "ou", "uo"})


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


def _same_key(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.public_key().public_numbers() == b.public_key().public_numbers()


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


class IsolatedSettings(ClerkSettings):
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


# -- organization claims ------------------------------------------------------------------


def _split_permission(permission: str) -> tuple[str, str]:
    parts = permission.removeprefix("org:").split(":")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"org permission {permission!r} is not of the form 'org:<feature>:<permission>'"
        )
    return parts[0], parts[1]


def _scope_of(entry: str) -> str:
    scope, _, _ = entry.partition(":")
    return scope


def encode_organization(
    *,
    org_id: str,
    org_slug: str | None = None,
    org_role: str | None = None,
    org_permissions: Iterable[str] = (),
    fea: str | None = None,
    version: int = 2,
) -> dict[str, Any]:
    """The claims that carry an active organization, as Clerk writes them.

    ``version=2`` gives ``o = {id, slg, rol, per, fpm}`` plus the features in ``fea``:
    ``rol`` has no ``org:`` prefix, ``per`` lists the permission names, and the i-th integer of
    ``fpm`` is a bitmask over ``per`` for the i-th organization feature. Organization features
    come first in ``fea`` and every other feature gets a ``0`` mask, so the token reads the same
    whether a decoder pairs ``fpm`` with all features or only with the organization's (Clerk's
    JS SDK does the latter). ``version=1`` gives the flat ``org_*`` claims.
    """
    permissions = list(dict.fromkeys(org_permissions))
    role = None if org_role is None else f"org:{org_role.removeprefix('org:')}"
    if version == 1:
        flat: dict[str, Any] = {"org_id": org_id, "org_role": role}
        if org_slug is not None:
            flat["org_slug"] = org_slug
        flat["org_permissions"] = [f"org:{p.removeprefix('org:')}" for p in permissions]
        return flat
    o: dict[str, Any] = {"id": org_id}
    if org_slug is not None:
        o["slg"] = org_slug
    if role is not None:
        o["rol"] = role.removeprefix("org:")
    claims: dict[str, Any] = {"o": o}
    if not permissions:
        if fea is not None:
            claims["fea"] = fea
        return claims
    pairs = [_split_permission(p) for p in permissions]
    entries = [e.strip() for e in (fea or "").split(",") if e.strip()]
    org_entries = [e for e in entries if _scope_of(e) in _ORG_SCOPES]
    other_entries = [e for e in entries if _scope_of(e) not in _ORG_SCOPES]
    org_features = [e.partition(":")[2] for e in org_entries]
    for feature, _ in pairs:
        if feature not in org_features:
            org_features.append(feature)
            org_entries.append(f"o:{feature}")
    names = list(dict.fromkeys(name for _, name in pairs))
    masks = [
        sum(1 << names.index(name) for f, name in pairs if f == feature) for feature in org_features
    ]
    o["per"] = ",".join(names)
    o["fpm"] = ",".join(str(mask) for mask in [*masks, *(0 for _ in other_entries)])
    claims["fea"] = ",".join(org_entries + other_entries)
    return claims


def _without_none(payload: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in payload.items() if value is not None}


# -- the issuer ---------------------------------------------------------------------------


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
        kid: str = DEFAULT_KID,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.kid = kid
        self.private_key = private_key or shared_private_key(ISSUER_SLOT)

    def __repr__(self) -> str:
        return f"TestIssuer(issuer={self.issuer!r}, kid={self.kid!r})"

    @classmethod
    def several(cls, count: int = 2, *, kid: str | None = None) -> list[TestIssuer]:
        """``count`` stand-ins for distinct Clerk instances (production, staging, ...).

        Issuer ``i`` is ``https://instance-<i>.clerk.test`` with its own key pair (generated
        once per process) and its own ``kid``; ``kid=`` gives them all the same one, to test
        that a shared ``kid`` never lets one instance's key verify another's tokens. Trust
        them all with ``ClerkAuth([i.settings() for i in issuers])``.
        """
        if count < 1:
            raise ValueError("TestIssuer.several: count must be at least 1")
        issuers = []
        for index in range(1, count + 1):
            key = shared_private_key(INSTANCE_SLOTS + index)
            issuers.append(
                cls(
                    issuer=f"https://instance-{index}.clerk.test",
                    kid=kid or key_id_for(key),
                    private_key=key,
                )
            )
        return issuers

    @property
    def public_pem(self) -> str:
        """The public key as PEM text, the form ``CLERK_JWT_KEY`` takes."""
        return public_pem(self.private_key)

    def settings(self, **overrides: Any) -> ClerkSettings:
        """Settings that trust this issuer (networkless: ``jwt_key`` is its public key).

        Environment variables and dotenv files are ignored, so a developer's own ``.env``
        cannot change a test. Keywords are ``ClerkSettings`` fields (``leeway=0``, ...).
        """
        values: dict[str, Any] = {"issuer": self.issuer, "jwt_key": self.public_pem}
        values.update(overrides)
        return IsolatedSettings(**values)

    # FastAPI reads a dependency's signature to find its parameters; showing none lets
    # ``app.dependency_overrides[get_settings] = issuer.settings`` work as written.
    settings.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )

    def jwks(self) -> dict[str, Any]:
        """The public key set (``{"keys": [...]}``), as Clerk serves it."""
        return {"keys": [public_jwk(self.private_key, self.kid)]}

    def claims(
        self,
        sub: str = "user_test",
        *,
        now: float | None = None,
        org_id: str | None = None,
        org_slug: str | None = None,
        org_role: str | None = None,
        org_permissions: Sequence[str] | None = None,
        **claims: Any,
    ) -> dict[str, Any]:
        """The payload :meth:`token` signs. See :meth:`token` for the keywords."""
        issued_at = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "sub": sub,
            "sid": f"sess_{uuid.uuid4().hex[:24]}",
            "iat": issued_at,
            "nbf": issued_at - CLOCK_SKEW,
            "exp": issued_at + SESSION_LIFETIME,
            "iss": self.issuer,
            "jti": uuid.uuid4().hex[:20],
            "v": 2,
            "fva": [0, -1],
        }
        organization = (org_id, org_slug, org_role, org_permissions)
        if any(value is not None for value in organization):
            if "o" in claims or any(name.startswith("org_") for name in claims):
                raise TypeError("pass the organization either as org_* keywords or as o=, not both")
            version = claims.get("v", 2)
            payload.update(
                encode_organization(
                    org_id=org_id or "org_test",
                    org_slug=org_slug,
                    org_role=org_role,
                    org_permissions=org_permissions or (),
                    fea=claims.pop("fea", None),
                    version=1 if version == 1 else 2,
                )
            )
        payload.update(claims)
        return {name: value for name, value in payload.items() if value is not None}

    def header(self, **fields: Any) -> dict[str, Any]:
        """The JOSE header :meth:`token` uses; ``None`` values remove a field."""
        header: dict[str, Any] = {
            "alg": "RS256",
            "cat": SESSION_CATEGORY,
            "kid": self.kid,
            "typ": "JWT",
        }
        header.update(fields)
        return {name: value for name, value in header.items() if value is not None}

    def token(
        self,
        sub: str = "user_test",
        *,
        headers: dict[str, Any] | None = None,
        now: float | None = None,
        org_id: str | None = None,
        org_slug: str | None = None,
        org_role: str | None = None,
        org_permissions: Sequence[str] | None = None,
        **claims: Any,
    ) -> str:
        """A signed v2 session token for ``sub``, valid for 60 s from ``now`` (default: now).

        Any other keyword adds or replaces a claim (``email="ada@example.com"``,
        ``fva=[5, 5]``, ``pla="u:pro"``, ``azp="http://localhost:3000"``, ``sts="pending"``);
        ``None`` removes one (``sid=None``). ``org_id``, ``org_slug``, ``org_role`` (``admin``
        or ``org:admin``) and ``org_permissions`` (``["org:invoices:read"]``) write the active
        organization as Clerk does (``o`` and ``fea``; with ``v=1``, the flat v1 claims);
        ``org_id`` defaults to ``org_test`` when only a role or permissions are given.
        ``headers`` adds, replaces or (with ``None``) removes header fields.
        """
        payload = self.claims(
            sub,
            now=now,
            org_id=org_id,
            org_slug=org_slug,
            org_role=org_role,
            org_permissions=org_permissions,
            **claims,
        )
        return sign_jwt(self.header(**(headers or {})), payload, self.private_key)

    def template_token(
        self,
        sub: str = "user_test",
        *,
        lifetime: int = SESSION_LIFETIME,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A JWT-template token: template category, no ``sid``/``v``/``fva``, custom claims
        (``aud=...``) by keyword. Rejected unless ``accept_jwt_templates`` is on."""
        issued_at = int(time.time() if now is None else now)
        defaults: dict[str, Any] = {
            "sid": None,
            "v": None,
            "fva": None,
            "exp": issued_at + lifetime,
        }
        return self.token(
            sub,
            headers={"cat": TEMPLATE_CATEGORY},
            now=issued_at,
            **{**defaults, **claims},
        )

    def m2m_token(
        self,
        machine_id: str = "mch_test",
        *,
        scopes: Sequence[str] | None = (),
        lifetime: int = 3600,
        now: float | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT M2M token, shaped like Clerk's: header ``cat`` ``cl_B7d4PD333AAA``, ``sub``
        the machine, ``jti`` ``mt_...``, ``scopes`` space-separated; other keywords are custom
        claims (``None`` removes one; ``scopes=None`` leaves the scopes to ``aud=[...]``).
        Verified by ``require_machine`` with no network call."""
        issued_at = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": machine_id,
            "jti": f"mt_{uuid.uuid4().hex}",
            "iat": issued_at,
            "nbf": issued_at - CLOCK_SKEW,
            "exp": issued_at + lifetime,
            "scopes": None if scopes is None else " ".join(scopes),
            **claims,
        }
        header = self.header(**{"cat": M2M_CATEGORY, **(headers or {})})
        return sign_jwt(header, _without_none(payload), self.private_key)

    def oauth_token(
        self,
        sub: str = "user_test",
        *,
        client_id: str = "oauth_app_test",
        scopes: Sequence[str] = ("profile", "email"),
        lifetime: int = 3600,
        now: float | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT OAuth access token: header ``typ`` ``at+jwt`` (no ``cat``), ``sub`` the user,
        ``jti`` ``oat_...``, ``client_id``, ``scp`` the list of scopes; other keywords are
        claims (``None`` removes one)."""
        issued_at = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "jti": f"oat_{uuid.uuid4().hex}",
            "client_id": client_id,
            "iat": issued_at,
            "nbf": issued_at - CLOCK_SKEW,
            "exp": issued_at + lifetime,
            "scp": list(scopes),
            **claims,
        }
        header = self.header(**{"cat": None, "typ": "at+jwt", **(headers or {})})
        return sign_jwt(header, _without_none(payload), self.private_key)

    def expired_token(
        self, sub: str = "user_test", *, seconds_ago: int = 120, **claims: Any
    ) -> str:
        """A token that expired ``seconds_ago`` seconds ago (default: well past any leeway)."""
        now = time.time() - seconds_ago - SESSION_LIFETIME
        return self.token(sub, now=now, **claims)

    def forged_token(
        self,
        sub: str = "user_test",
        *,
        headers: dict[str, Any] | None = None,
        signed_by: TestIssuer | rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """A token with this issuer's header (same ``kid``) and claims, signed by another key.

        ``signed_by`` chooses that key: another ``TestIssuer`` (a token that claims to come from
        this instance but is signed by that one) or a private key; by default, a key no issuer
        uses.
        """
        if isinstance(signed_by, TestIssuer):
            forger = signed_by.private_key
        elif signed_by is not None:
            forger = signed_by
        else:
            forger = shared_private_key(FORGER_SLOT)
            if _same_key(forger, self.private_key):
                forger = shared_private_key(ISSUER_SLOT)
        return sign_jwt(self.header(**(headers or {})), self.claims(sub, **claims), forger)
