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
from collections.abc import Callable
from typing import Any

from pydantic_core import SchemaValidator, core_schema, from_json

from .errors import ClerkAuthError, ErrorReason

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_BYTES",
    "PYDANTIC_CORE_BASE64",
    "DecodedJwt",
    "decode_base64url",
    "decode_payload",
    "decode_unverified",
    "known_header",
    "may_nest_deeper",
    "nests_deeper",
    "remember_header",
    "split_token",
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
    header, payload, signing_input, signature = split_token(token)
    return header, decode_payload(payload), signing_input, signature


def decode_payload(raw: bytes) -> dict[str, Any]:
    """The decoded payload segment as a JSON object; raises ``token-invalid`` otherwise."""
    return _decode_segment(raw, "payload")


def split_token(token: str) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """:func:`decode_unverified` with the payload left as its (base64-decoded) JSON text."""
    if len(token) > MAX_TOKEN_BYTES:
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"token is larger than {MAX_TOKEN_BYTES // 1024} KiB; Clerk session tokens are ~1 KiB",
        )
    dots = token.count(".")
    if dots != 2:
        _refuse_opaque_machine_token(token)
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"not a JWT: expected 3 dot-separated segments, got {dots + 1}",
        )
    first = token.index(".")
    second = token.index(".", first + 1)
    # Every character base64url or a dot, checked once for the whole token. The signature may
    # be empty here (an `alg: none` token): the algorithm check rejects it.
    if not (0 < first < second - 1 and token.isascii()):
        raise _invalid(ErrorReason.TOKEN_INVALID, "not a JWT: segments must be base64url text")
    data = token.encode("ascii")
    if data.translate(None, _BASE64URL_AND_DOT):
        raise _invalid(ErrorReason.TOKEN_INVALID, "not a JWT: segments must be base64url text")
    if not _segments_canonical(token, first, second):
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            "not a JWT: a segment is not canonical base64url (one token, one spelling)",
        )
    head = token[:first]
    # A header seen on a token that passed every check is known to be well-formed.
    header = _known_headers.get(head)
    if header is None:
        header = _decode_segment(_b64decode(data[:first]), "header")
    payload = _b64decode(data[first + 1 : second])
    signature = _b64decode(data[second + 1 :])
    return header, payload, data[:second], signature


# Deleting these bytes from a compact JWS leaves nothing.
_BASE64URL_AND_DOT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


# Header segments of tokens that passed every check, decoded: an instance signs every token
# with the same few headers, so their decoding is done once. Never changed once stored.
_known_headers: dict[str, dict[str, Any]] = {}
_KNOWN_HEADERS_MAX = 64


# The ids of the header objects stored above: a stored header stays alive while stored, so no
# other object can have its id; a lookup here costs less than slicing the token's header.
_known_ids: set[int] = set()


def known_header(segment: str) -> dict[str, Any] | None:
    """The decoded header of a header segment seen on a token that passed every check."""
    return _known_headers.get(segment)


def remember_header(token: str | bytes, header: dict[str, Any]) -> None:
    """Remember the decoded header of ``token`` (or of its signing input), which has passed
    every check."""
    if id(header) in _known_ids:
        return
    text = token.decode("ascii") if isinstance(token, bytes) else token
    head = text[: text.index(".")]
    if head not in _known_headers:
        if len(_known_headers) >= _KNOWN_HEADERS_MAX:
            _known_headers.clear()
            _known_ids.clear()
        _known_headers[head] = header
        _known_ids.add(id(header))


# A segment of 2 or 3 characters past a multiple of 4 ends in a character with 4 or 2 unused
# low bits. Canonical base64url has them zero, so one byte string has exactly one spelling
# (otherwise one token has up to 16, each a cache entry of its own). Index = length % 4; a
# length of 1 mod 4 is never valid.
_CANONICAL_LAST = ("", "", "AQgw", "AEIMQUYcgkosw048")


def _segments_canonical(token: str, first: int, second: int) -> bool:
    """Whether each segment of ``token`` (base64url text, dots at ``first`` and ``second``)
    is the one spelling of its bytes."""
    last = len(token) - 1
    return (
        _canonical(first, token[first - 1])
        and _canonical(second - first - 1, token[second - 1])
        and _canonical(last - second, token[last])
    )


def _canonical(length: int, last: str) -> bool:
    """Whether re-encoding the decoded bytes of a segment of ``length`` characters ending in
    ``last`` gives the segment back."""
    rest = length & 3
    return not rest or last in _CANONICAL_LAST[rest]


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")


def _a2b_urlsafe(segment: bytes) -> bytes:
    """Decode one canonical base64url segment with the standard library."""
    return binascii.a2b_base64(segment.translate(_FROM_URLSAFE) + _PADDING[len(segment) & 3])


def _pydantic_core_decoder() -> Callable[[bytes], bytes] | None:
    """pydantic-core's base64 decoder (about 4 times binascii's speed on a token), when this
    version of pydantic-core has one that decodes base64url without padding as expected."""
    try:
        validator = SchemaValidator(
            core_schema.bytes_schema(), config=core_schema.CoreConfig(val_json_bytes="base64")
        )

        def decode(segment: bytes) -> bytes:
            # A JSON string of base64url text: [A-Za-z0-9_-] only, so nothing to escape.
            return validator.validate_json(b'"' + segment + b'"')  # type: ignore[no-any-return]

        works = decode(b"-_8") == b"\xfb\xff" and decode(b"YQ") == b"a" and decode(b"") == b""
    except Exception:  # an older pydantic-core: the standard library decodes
        return None
    return decode if works else None


_pydantic_core_b64decode = _pydantic_core_decoder()
PYDANTIC_CORE_BASE64 = _pydantic_core_b64decode is not None
"""Whether pydantic-core decodes base64url here (else the standard library does)."""
# Only called on canonical base64url text (checked in decode_unverified), which always decodes.
_b64decode: Callable[[bytes], bytes] = _pydantic_core_b64decode or _a2b_urlsafe


def decode_base64url(segment: bytes) -> bytes:
    """The bytes of one canonical base64url segment."""
    return _b64decode(segment)


def _decode_segment(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = from_json(raw)  # pydantic-core's JSON parser: half the time of json.loads
    except ValueError:
        # It refuses what json.loads refuses, and lone surrogates (valid JSON, never in a
        # Clerk token): json.loads decides, so every token reads as it always has.
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            raise _invalid(
                ErrorReason.TOKEN_INVALID, f"not a JWT: the {name} is not JSON"
            ) from None
    if not isinstance(value, dict):
        raise _invalid(ErrorReason.TOKEN_INVALID, f"not a JWT: the {name} is not a JSON object")
    if may_nest_deeper(raw) and nests_deeper(value):
        raise _invalid(
            ErrorReason.TOKEN_INVALID,
            f"the {name} nests deeper than {MAX_JSON_DEPTH} levels",
        )
    return value


def may_nest_deeper(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text ``raw`` may nest more than ``limit`` containers deep: counting its
    brackets is a C-speed upper bound on the depth."""
    return raw.count(b"[") + raw.count(b"{") > limit


def nests_deeper(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
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
