"""``TestIssuer``: mint Clerk-shaped session tokens with a local key pair.

A token from :meth:`TestIssuer.token` has the shape of a current (v2) Clerk session token:
header ``alg``/``kid``/``typ``/``cat``, claims ``sub``, ``sid``, ``iat``, ``nbf = iat - 10``,
``exp = iat + 60``, ``iss``, ``jti``, ``v: 2`` and ``fva``. Organization data is written the way
Clerk writes it (the ``o`` object and ``fea``), so the same decoding runs in tests as in
production.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..settings import ClerkSettings

# Re-exported: tests and older code import these from here. Their homes are .signing (keys
# and JWS signing) and .organization (organization claims).
from .organization import encode_organization
from .signing import (
    FORGER_SLOT,
    INSTANCE_SLOTS,
    ISSUER_SLOT,
    key_id_for,
    public_jwk,
    public_pem,
    shared_private_key,
    sign_jwt,
)
from .signing import (
    _keys as _keys,  # re-exported: the test kit counts the keys a run generated
)

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


def _same_key(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.public_key().public_numbers() == b.public_key().public_numbers()


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
        return self._machine_token(
            {"cat": M2M_CATEGORY, **(headers or {})},
            machine_id,
            "mt_",
            now,
            lifetime,
            {"scopes": None if scopes is None else " ".join(scopes), **claims},
        )

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
        return self._machine_token(
            {"cat": None, "typ": "at+jwt", **(headers or {})},
            sub,
            "oat_",
            now,
            lifetime,
            {"client_id": client_id, "scp": list(scopes), **claims},
        )

    def _machine_token(
        self,
        header: dict[str, Any],
        sub: str,
        id_prefix: str,
        now: float | None,
        lifetime: int,
        claims: dict[str, Any],
    ) -> str:
        """A signed machine JWT: ``header`` fields, then the claims every machine token has
        (``iss``, ``sub``, ``jti`` with ``id_prefix``, times), then ``claims`` (``None``
        removes one)."""
        issued_at = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "jti": f"{id_prefix}{uuid.uuid4().hex}",
            "iat": issued_at,
            "nbf": issued_at - CLOCK_SKEW,
            "exp": issued_at + lifetime,
            **claims,
        }
        return sign_jwt(self.header(**header), _without_none(payload), self.private_key)

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
