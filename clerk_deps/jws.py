"""Compact JWS parsing: everything done to a token before any key is looked up.

Owns the size and shape checks (three segments, at most :data:`MAX_TOKEN_BYTES`), canonical
base64url (one token, one spelling), segment decoding with a JSON depth bound
(:data:`MAX_JSON_DEPTH`), :func:`decode_unverified`, and the cache of headers already seen on
verified tokens. Nothing here verifies a signature or trusts a claim: that is
:mod:`clerk_deps.tokens`.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from .errors import ClerkAuthError, ErrorReason

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_BYTES",
    "DecodedJwt",
    "decode_unverified",
    "remember_header",
]

MAX_TOKEN_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32

DecodedJwt = tuple[dict[str, Any], dict[str, Any], bytes, bytes]
"""Header, payload, signing input and signature of a compact JWT."""


def _invalid(reason: ErrorReason, message: str) -> ClerkAuthError:
    return ClerkAuthError(reason, message)


def decode_unverified(token: str) -> DecodedJwt:
    """``token`` split and decoded after the size and shape checks, nothing verified yet.

    Raises ``token-invalid`` (``token-type-mismatch`` for an opaque machine token) as
    :func:`~clerk_deps.tokens.verify_token` would. Nothing read here may be trusted before
    the signature has verified (:func:`~clerk_deps.tokens.verify_signed_jwt`).
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"token is larger than {MAX_TOKEN_BYTES // 1024} KiB; Clerk session tokens are ~1 KiB",
        )
    parts = token.split(".")
    if len(parts) != 3:
        _refuse_opaque_machine_token(token)
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"not a JWT: expected 3 dot-separated segments, got {len(parts)}",
        )
    head, body, tail = parts
    # A header seen on a token that passed every check is known to be well-formed.
    header = _known_headers.get(head)
    # The signature may be empty here (an `alg: none` token): the algorithm check rejects it.
    if not (
        (header is not None or _is_base64url(head))
        and _is_base64url(body)
        and (not tail or _is_base64url(tail))
    ):
        raise _invalid(ErrorReason.TOKEN_INVALID, "not a JWT: segments must be base64url text")
    if not (_canonical(head) and _canonical(body) and _canonical(tail)):
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            "not a JWT: a segment is not canonical base64url (one token, one spelling)",
        )
    if header is None:
        header = _decode_segment(head, "header")
    payload = _decode_segment(body, "payload")
    signature = _b64decode(tail)
    return header, payload, token[: len(head) + len(body) + 1].encode("ascii"), signature


_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _is_base64url(segment: str) -> bool:
    """Non-empty base64url text (deleting every alphabet byte leaves nothing)."""
    return bool(segment) and segment.isascii() and not segment.encode().translate(None, _BASE64URL)


# Header segments of tokens that passed every check, decoded: an instance signs every token
# with the same few headers, so their decoding is done once. Never changed once stored.
_known_headers: dict[str, dict[str, Any]] = {}
_KNOWN_HEADERS_MAX = 64


def remember_header(token: str, header: dict[str, Any]) -> None:
    """Remember the decoded header of ``token``, which has passed every check."""
    head = token[: token.index(".")]
    if head not in _known_headers:
        if len(_known_headers) >= _KNOWN_HEADERS_MAX:
            _known_headers.clear()
        _known_headers[head] = header


# A segment of 2 or 3 characters past a multiple of 4 ends in a character with 4 or 2 unused
# low bits. Canonical base64url has them zero, so one byte string has exactly one spelling
# (otherwise one token has up to 16, each a cache entry of its own). Index = length % 4; a
# length of 1 mod 4 is never valid.
_CANONICAL_LAST = ("", "", "AQgw", "AEIMQUYcgkosw048")


def _canonical(segment: str) -> bool:
    """Whether re-encoding the decoded bytes of ``segment`` gives ``segment`` back."""
    rest = len(segment) & 3
    return not rest or segment[-1] in _CANONICAL_LAST[rest]


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64decode(segment: str) -> bytes:
    # Only called on canonical base64url text (checked in decode_unverified), which always decodes.
    # base64.urlsafe_b64decode's own steps, without its per-call argument handling.
    pad = b"=" * (-len(segment) % 4)
    return binascii.a2b_base64(segment.encode("ascii").translate(_FROM_URLSAFE) + pad)


def _decode_segment(segment: str, name: str) -> dict[str, Any]:
    raw = _b64decode(segment)
    try:
        # json.loads on str skips the encoding detection it does for bytes (~40% faster here)
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _invalid(ErrorReason.TOKEN_INVALID, f"not a JWT: the {name} is not JSON") from None
    if not isinstance(value, dict):
        raise _invalid(ErrorReason.TOKEN_INVALID, f"not a JWT: the {name} is not a JSON object")
    # Counting brackets is a C-speed upper bound on the depth; only walk when it could be deep.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth_exceeds(value):
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"the {name} nests deeper than {MAX_JSON_DEPTH} levels",
        )
    return value


def _depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a decoded JSON value nests more than ``limit`` containers deep (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _refuse_opaque_machine_token(token: str) -> None:
    """An API key, opaque M2M or OAuth token is not a session token: ``token-type-mismatch``
    (as Clerk's SDKs answer), decided from its prefix alone."""
    if token.startswith(("ak_", "mt_", "oat_")):
        raise _invalid(
            ErrorReason.TOKEN_TYPE_MISMATCH,
            "a machine token (API key, M2M or OAuth token) is not a session token; routes that "
            "take machine tokens use require_machine or require_clerk_auth(accepts=...)",
        )
