"""A session token read before verification: split, decoded, its payload typed.

:func:`read_token` reads a well-formed token in one pydantic-core call: the payload and the
signature are decoded from base64url and the payload's JSON is parsed into the fields of
``ClerkClaims`` with their types checked (:func:`~clerk_deps.token_claims.read_payload`'s
schema), without a Python step in between. Whatever that call cannot vouch for (a header not
seen before on a verified token, a character outside base64url, a payload that is no JSON
object or has a field of another type, nesting past the limit) is read by the step-by-step
path of :mod:`clerk_deps.jws`, which raises the exact refusal. Both give equal readings.
Nothing here verifies a signature or trusts a claim.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

from pydantic_core import SchemaValidator, core_schema

from .jws import (
    MAX_JSON_DEPTH,
    MAX_TOKEN_BYTES,
    PYDANTIC_CORE_BASE64,
    decode_base64url,
    decode_payload,
    known_header,
    nests_deeper,
    split_token,
)
from .token_claims import PAYLOAD_FIELDS_SCHEMA, UNTYPED_FIELDS, ValidatedPayload, read_payload

__all__ = ["ReadToken", "read_token"]


class ReadToken(NamedTuple):
    """A session token split and its payload read, nothing verified yet."""

    header: dict[str, Any]
    signing_input: bytes
    signature: bytes
    read: ValidatedPayload | None  # the payload read in one pass (read_payload), or None
    payload: dict[str, Any] | None  # and then the payload decoded as a dict

    def __repr__(self) -> str:
        return "ReadToken(<token parts not shown>)"  # they are the token itself

    @property
    def issuer(self) -> str | None:
        """The unverified ``iss`` (for routing to an instance only)."""
        claims = self.read[0] if self.read is not None else self.payload or {}
        iss = claims.get("iss")
        return iss if isinstance(iss, str) else None

    def payload_dict(self) -> dict[str, Any]:
        """The payload decoded as a dict (decoded now when it was read in one pass)."""
        if self.payload is not None:
            return self.payload
        segment = self.signing_input[self.signing_input.index(b".") + 1 :]
        return decode_payload(decode_base64url(segment))


def read_token(token: str) -> ReadToken:
    """``token`` split and its payload read: in one pass by pydantic-core when well-formed,
    else decoded as a dict now, so that a payload that is no JSON object is refused before
    anything else (as :func:`~clerk_deps.jws.decode_unverified` refuses it)."""
    at_once = _read_at_once(token)
    if at_once is not None:
        return at_once
    header, raw, signing_input, signature = split_token(token)
    read = read_payload(raw)
    payload = decode_payload(raw) if read is None else None
    return ReadToken(header, signing_input, signature, read, payload)


def _segments_reader() -> Callable[[bytes], tuple[str, ValidatedPayload, bytes]] | None:
    """One pydantic-core call from ``["<header>","<payload>","<signature>"]`` (the token's
    segments as a JSON array) to the header segment as given, the payload's fields read with
    :data:`~clerk_deps.token_claims.PAYLOAD_FIELDS_SCHEMA`, and the signature's bytes; ``None``
    when pydantic-core cannot decode base64url (then every token is read step by step)."""
    if not PYDANTIC_CORE_BASE64:
        return None
    decoded = core_schema.bytes_schema()
    payload = core_schema.chain_schema([decoded, core_schema.json_schema(PAYLOAD_FIELDS_SCHEMA)])
    validator = SchemaValidator(
        core_schema.tuple_schema([core_schema.str_schema(strict=True), payload, decoded]),
        config=core_schema.CoreConfig(val_json_bytes="base64"),
    )
    return validator.validate_json


_READER = _segments_reader()


def _read_at_once(token: str) -> ReadToken | None:
    """``token`` read in one pydantic-core call, or ``None``: not certain to read as the
    step-by-step path reads it (which then decides, and refuses with the exact reason).

    The checks the call leaves to this function: the size, ASCII, no character that is base64
    but not base64url or that would end or escape a JSON string, and a header already seen on
    a verified token (its text, canonical and known). The call refuses everything else the
    step-by-step path refuses: a count of segments other than three (the tuple has three
    items), a character outside base64, a segment that is not the one spelling of its bytes
    (pydantic-core refuses a length of 1 mod 4 and unused bits that are not zero), a payload
    that is no JSON object or has a field of another type."""
    reader = _READER
    if reader is None or len(token) > MAX_TOKEN_BYTES or not token.isascii():
        return None
    # base64 but not base64url, or what would end or escape a JSON string; every other
    # character outside base64url fails pydantic-core's decoder (tests hold it to that)
    if "+" in token or "/" in token or "=" in token or '"' in token or "\\" in token:
        return None
    first = token.find(".")
    header = known_header(token[:first])
    if header is None:
        return None  # a header never verified is decoded and checked step by step
    data = token.encode("ascii")
    try:
        _, read, signature = reader(b'["' + data.replace(b".", b'","') + b'"]')
    except ValueError:  # pydantic_core.ValidationError is a ValueError
        return None
    if _nested(read):
        return None
    return _new_read_token(ReadToken, (header, data[: token.rindex(".")], signature, read, None))


_new_read_token = tuple.__new__  # ReadToken(...) without NamedTuple's Python-level __new__


_CONTAINERS = (dict, list)
_untyped_fields = itemgetter(*UNTYPED_FIELDS)  # the fields that may hold containers


def _nested(read: ValidatedPayload) -> bool:
    """Whether the payload nests deeper than :data:`MAX_JSON_DEPTH`. Only a claim that is a
    container of containers is measured (``o`` and ``fva`` hold plain values); the claims that
    can hold one are the other claims and the fields read as any JSON value."""
    fields, others, _ = read
    for claim in (*others.values(), *_untyped_fields(fields)):
        if type(claim) in _CONTAINERS:
            for item in claim.values() if type(claim) is dict else claim:
                if type(item) in _CONTAINERS:
                    # the claim's own level is the payload's second
                    if nests_deeper(claim, MAX_JSON_DEPTH - 1):
                        return True
                    break
    return False
