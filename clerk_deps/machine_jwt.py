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
_NAMES = {TokenType.M2M_TOKEN: "M2M", TokenType.OAUTH_TOKEN: "OAuth"}
_ID_PREFIXES = {TokenType.M2M_TOKEN: "mt_", TokenType.OAUTH_TOKEN: "oat_"}


async def verify_machine_jwt(
    decoded: DecodedJwt, kind: TokenType, settings: ClerkSettings, now: float
) -> MachineAuth:
    """Verify a JWT M2M or OAuth token (already typed by :func:`detect_token_type`)."""
    await verify_signed_jwt(decoded, settings, now)
    header, payload = decoded[0], decoded[1]
    if kind is TokenType.M2M_TOKEN:
        return _m2m_from_jwt(header, payload)
    return _oauth_from_jwt(payload)


def _bad_claim(kind: TokenType, rule: str) -> ClerkAuthError:
    return ClerkAuthError(ErrorReason.TOKEN_INVALID, f"not a valid {_NAMES[kind]} JWT: {rule}")


def _token_id(payload: dict[str, Any], kind: TokenType) -> str:
    jti = payload.get("jti")
    prefix = _ID_PREFIXES[kind]
    if not isinstance(jti, str) or not jti.startswith(prefix):
        raise _bad_claim(kind, f"claim 'jti' (the token id) must start with '{prefix}'")
    return jti


def _space_separated(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _machine_auth(
    kind: TokenType,
    payload: dict[str, Any],
    jti: str,
    scopes: Any,
    scopes_rule: str,
    **fields: Any,
) -> MachineAuth:
    """The :class:`MachineAuth` of a verified JWT of ``kind`` (``jti`` already checked), once
    its raw ``scopes`` read as a list (else ``token-invalid`` saying ``scopes_rule``)."""
    parsed = _space_separated(scopes)
    if parsed is None:
        raise _bad_claim(kind, scopes_rule)
    return MachineAuth(
        token_type=kind,
        id=jti,
        subject=payload["sub"],
        scopes=parsed,
        expires_at=payload["exp"],
        **fields,
    )


def _m2m_from_jwt(header: dict[str, Any], payload: dict[str, Any]) -> MachineAuth:
    if header.get("cat", M2M_CATEGORY) != M2M_CATEGORY:
        raise _bad_claim(TokenType.M2M_TOKEN, f"header cat must be {M2M_CATEGORY} or absent")
    jti = _token_id(payload, TokenType.M2M_TOKEN)
    scopes = payload["scopes"] if "scopes" in payload else payload.get("aud", [])
    claims = {name: value for name, value in payload.items() if name not in _M2M_REGISTERED}
    rule = "'scopes' must be a space-separated string or 'aud' a list"
    return _machine_auth(TokenType.M2M_TOKEN, payload, jti, scopes, rule, claims=claims)


def _oauth_from_jwt(payload: dict[str, Any]) -> MachineAuth:
    if not payload["sub"].startswith("user_"):
        raise _bad_claim(TokenType.OAUTH_TOKEN, "claim 'sub' must be a user id (user_...)")
    jti = _token_id(payload, TokenType.OAUTH_TOKEN)
    client_id = payload.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise _bad_claim(TokenType.OAUTH_TOKEN, "claim 'client_id' must be a non-empty string")
    scopes = payload["scp"] if "scp" in payload else payload.get("scope", "")
    rule = "'scp' must be a list of strings or 'scope' a string"
    return _machine_auth(TokenType.OAUTH_TOKEN, payload, jti, scopes, rule, client_id=client_id)
