"""JWT M2M and OAuth access tokens, verified locally with the instance's keys.

The header, key, signature, time and issuer checks are the session tokens' own
(:func:`clerk_deps.tokens.verify_signed_jwt`, with the instance's shared key source); then each
kind's claim rules, as Clerk issues them. Nothing is read from the payload before the
signature has verified.
"""

from __future__ import annotations

from typing import Any

from .errors import ClerkAuthError, ErrorReason
from .jws import DecodedJwt
from .machine_tokens import M2M_CATEGORY, MachineAuth, TokenType
from .settings import ClerkSettings
from .tokens import verify_signed_jwt

__all__ = ["verify_machine_jwt"]

_M2M_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scopes"})


async def verify_machine_jwt(
    decoded: DecodedJwt, kind: TokenType, settings: ClerkSettings, now: float
) -> MachineAuth:
    """Verify a JWT M2M or OAuth token (already typed by :func:`detect_token_type`)."""
    await verify_signed_jwt(decoded, settings, now)
    header, payload = decoded[0], decoded[1]
    if kind is TokenType.M2M_TOKEN:
        return _m2m_from_jwt(header, payload)
    return _oauth_from_jwt(payload)


def _bad_claim(kind: str, rule: str) -> ClerkAuthError:
    return ClerkAuthError(ErrorReason.TOKEN_INVALID, f"not a valid {kind} JWT: {rule}")


def _token_id(payload: dict[str, Any], kind: str, prefix: str) -> str:
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti.startswith(prefix):
        raise _bad_claim(kind, f"claim 'jti' (the token id) must start with '{prefix}'")
    return jti


def _space_separated(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _m2m_from_jwt(header: dict[str, Any], payload: dict[str, Any]) -> MachineAuth:
    if header.get("cat", M2M_CATEGORY) != M2M_CATEGORY:
        raise _bad_claim("M2M", f"header cat must be {M2M_CATEGORY} or absent")
    jti = _token_id(payload, "M2M", "mt_")
    scopes = _space_separated(payload["scopes"] if "scopes" in payload else payload.get("aud", []))
    if scopes is None:
        raise _bad_claim("M2M", "'scopes' must be a space-separated string or 'aud' a list")
    claims = {name: value for name, value in payload.items() if name not in _M2M_REGISTERED}
    return MachineAuth(
        token_type=TokenType.M2M_TOKEN,
        id=jti,
        subject=payload["sub"],
        scopes=scopes,
        claims=claims,
        expires_at=payload["exp"],
    )


def _oauth_from_jwt(payload: dict[str, Any]) -> MachineAuth:
    if not payload["sub"].startswith("user_"):
        raise _bad_claim("OAuth", "claim 'sub' must be a user id (user_...)")
    jti = _token_id(payload, "OAuth", "oat_")
    client_id = payload.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise _bad_claim("OAuth", "claim 'client_id' must be a non-empty string")
    scopes = _space_separated(payload["scp"] if "scp" in payload else payload.get("scope", ""))
    if scopes is None:
        raise _bad_claim("OAuth", "'scp' must be a list of strings or 'scope' a string")
    return MachineAuth(
        token_type=TokenType.OAUTH_TOKEN,
        id=jti,
        subject=payload["sub"],
        scopes=scopes,
        client_id=client_id,
        expires_at=payload["exp"],
    )
