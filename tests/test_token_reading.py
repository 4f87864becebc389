"""A token read in one pydantic-core call reads exactly as the step-by-step path reads it, and
the RS256 check by "encode and compare" accepts exactly what ``cryptography``'s verify accepts.

The one-call reader answers for a token or steps aside (``None``); the property that matters
is that whenever it answers, its answer is the step-by-step path's, and that every token the
step-by-step path refuses, it steps aside for (so the refusal keeps its exact reason).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ErrorReason,
    token_claims,
    token_reading,
    verify_token,
)
from clerk_deps import jws as jws_module
from clerk_deps.testing import TestIssuer, sign_jwt
from clerk_deps.token_claims import read_payload

ISSUER = TestIssuer()
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(autouse=True)
def known_header() -> None:
    """The issuer's header is known, as it is once one of its tokens has verified."""
    token = ISSUER.token("user_1")
    jws_module.remember_header(token, jws_module.split_token(token)[0])
    assert jws_module.known_header(token.split(".")[0]) is not None


def step_by_step(token: str) -> Any:
    """What the step-by-step path makes of ``token``: its parts and the payload's fields read
    by the one-pass schema (``None`` when they are not all of the model's types), or the
    refusal."""
    try:
        header, raw, signing_input, signature = jws_module.split_token(token)
        jws_module.decode_payload(raw)  # a JSON object, nested within the limit
    except ClerkAuthError as error:
        return (error.reason, error.message)
    try:
        read = token_claims._PAYLOAD_FIELDS.validate_json(raw)
    except ValueError:
        read = None  # read as a dict, by pydantic
    return header, signing_input, signature, read


def token_payload(token: str) -> bytes:
    return jws_module.split_token(token)[1]


def at_once(token: str) -> Any:
    read = token_reading._read_at_once(token)
    return None if read is None else (read.header, read.signing_input, read.signature, read.read)


def assert_agrees(token: str) -> Any:
    """The one-call reading is the step-by-step one, or steps aside; returns the former."""
    fast = at_once(token)
    if fast is not None:
        assert repr(step_by_step(token)) == repr(fast), token  # repr: NaN equals itself
    return fast


def respell(token: str, index: int, character: str) -> str:
    return token[:index] + character + token[index + 1 :]


def test_a_clerk_token_is_read_at_once_as_step_by_step() -> None:
    custom = {"metadata": {"roles": ["admin", {"scope": ["a", "b"]}]}, "tags": [1, 2.5, None]}
    for token in (
        ISSUER.token("user_1"),
        ISSUER.token("user_2", email="a@example.com", fva=[3, -1], **custom),
        ISSUER.token("user_3", o={"id": "org_1", "rol": "admin", "per": "read", "fpm": "1"}),
    ):
        assert assert_agrees(token) is not None
        assert token_reading.read_token(token).read == read_payload(token_payload(token))


def test_a_header_never_verified_is_read_step_by_step() -> None:
    token = ISSUER.token("user_1", headers={"x-unseen": 1})
    assert at_once(token) is None
    assert token_reading.read_token(token).header["x-unseen"] == 1


@pytest.mark.parametrize("character", ["+", "/", "=", '"', "\\", " ", "!", "\t", "é", "\x00"])
def test_a_character_outside_base64url_is_left_to_the_step_by_step_refusal(
    character: str,
) -> None:
    token = ISSUER.token("user_1")
    head, body, _ = token.split(".")
    for spot in (len(head) + 5, len(head) + len(body) + 5, len(token) - 1):
        changed = respell(token, spot, character)
        assert at_once(changed) is None
        assert step_by_step(changed)[0] is ErrorReason.TOKEN_INVALID


def payload_spelled_with(character: str, without: str) -> str:
    """A token whose payload segment has ``character`` and not ``without``."""
    for index in range(4096):
        token = ISSUER.token(f"user_{index}", note="~>?" * (index % 7))
        body = token.split(".")[1]
        if character in body and without not in body:
            return token
    raise AssertionError("no such payload")  # pragma: no cover


@pytest.mark.parametrize(("url", "standard"), [("-", "+"), ("_", "/")])
def test_the_standard_base64_alphabet_is_another_spelling_and_refused(
    url: str, standard: str
) -> None:
    # '+' and '/' decode as '-' and '_' do, to the same bytes: a second spelling of the token
    token = payload_spelled_with(url, without="-_".replace(url, ""))
    head, body, signature = token.split(".")
    changed = f"{head}.{body.replace(url, standard)}.{signature}"
    assert at_once(changed) is None
    assert step_by_step(changed)[0] is ErrorReason.TOKEN_INVALID


def test_a_json_escape_in_a_segment_never_reads_as_the_character_it_escapes() -> None:
    token = ISSUER.token("user_1")
    head, body, signature = token.split(".")
    escaped = f"{head}.{body[:4]}\\u00{ord(body[4]):02x}{body[5:]}.{signature}"
    assert at_once(escaped) is None
    assert step_by_step(escaped)[0] is ErrorReason.TOKEN_INVALID


def test_every_other_spelling_of_a_segment_is_left_to_the_step_by_step_refusal() -> None:
    for sub in ("user_1", "user_12", "user_123"):  # payloads of each length mod 4
        token = ISSUER.token(sub)
        head, body, signature = token.split(".")
        ends = [len(head) + len(body), len(token) - 1]  # the last character of each segment
        spellings = 0
        for spot in ends:
            for character in BASE64URL:
                changed = respell(token, spot, character)
                if changed == token or (spot == ends[0] and len(body) % 4 == 0):
                    continue
                read = assert_agrees(changed)
                if read is None:
                    spellings += 1
                    continue
                # another spelling that decodes: it must decode to other bytes
                assert (read[1], read[2]) != (step_by_step(token)[1], step_by_step(token)[2])
        padded = f"{head}.{body}=.{signature}"
        assert at_once(padded) is None and at_once(token + "=") is None
        assert spellings > 0


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_a_token_of_another_count_of_segments_is_left_to_the_step_by_step_refusal(
    count: int,
) -> None:
    parts = ISSUER.token("user_1").split(".")
    token = ".".join((parts * 2)[:count])
    assert at_once(token) is None
    assert step_by_step(token)[0] in (ErrorReason.TOKEN_INVALID, ErrorReason.TOKEN_TYPE_MISMATCH)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [1, 2, 3, 30, 31, 32, 40, 300])
async def test_a_payload_nested_past_the_limit_is_refused_and_up_to_it_read(depth: int) -> None:
    # the payload is the first level: a claim nested `depth` deep makes depth + 1
    token = ISSUER.token("user_1", deep=nested(depth))
    fast = assert_agrees(token)
    too_deep = depth + 1 > jws_module.MAX_JSON_DEPTH
    assert (fast is None) == too_deep
    if too_deep:
        with pytest.raises(ClerkAuthError) as refused:
            await verify_token(token, ISSUER.settings())
        assert refused.value.reason is ErrorReason.TOKEN_INVALID
        assert "deeper" in refused.value.message
    else:
        assert (await verify_token(token, ISSUER.settings())).model_extra["deep"] == nested(depth)


@pytest.mark.parametrize("name", [*ClerkClaims.model_fields, "custom"])
@pytest.mark.parametrize("depth", [31, 32])
def test_every_claim_nested_past_the_limit_is_refused_as_step_by_step(
    name: str, depth: int
) -> None:
    # a claim nested `depth` deep makes a payload of depth + 1: 32 is the limit
    for version in (1, 2):
        payload = {**ISSUER.claims("user_1"), "v": version, name: nested(depth)}
        token = sign_jwt(ISSUER.header(), payload, ISSUER.private_key)
        fast = assert_agrees(token)
        refused = isinstance(step_by_step(token)[0], ErrorReason)
        assert refused == (depth + 1 > jws_module.MAX_JSON_DEPTH)
        assert fast is None or not refused


@pytest.mark.parametrize(
    ("claims", "read_at_once"),
    [
        ({"act": {"sub": nested(40)}}, False),
        ({"fva": nested(40)}, False),
        ({"org_permissions": nested(40)}, False),
        ({"act": {"sub": "user_2"}}, True),
        ({"fva": [[0], [1]]}, True),
    ],
)
def test_fields_that_may_hold_containers_are_measured_too(
    claims: dict[str, Any], read_at_once: bool
) -> None:
    token = sign_jwt(ISSUER.header(), {**ISSUER.claims("user_1"), **claims}, ISSUER.private_key)
    assert (assert_agrees(token) is not None) == read_at_once


def test_without_pydantic_cores_base64_every_token_is_read_step_by_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = ISSUER.token("user_1")
    monkeypatch.setattr(token_reading, "PYDANTIC_CORE_BASE64", False)
    assert token_reading._segments_reader() is None
    monkeypatch.setattr(token_reading, "_READER", None)
    assert token_reading._read_at_once(token) is None
    assert token_reading.read_token(token).read == read_payload(token_payload(token))


segments = st.text(alphabet=BASE64URL + '+/=."\\ !é', max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0), segments, st.integers(min_value=0, max_value=3))
def test_generated_damage_is_read_alike_or_left_to_the_step_by_step_path(
    spot: int, text: str, cut: int
) -> None:
    token = ISSUER.token("user_1")
    spot %= len(token)
    assert_agrees(token[:spot] + text + token[spot + cut :])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
), max_size=5))  # fmt: skip
def test_generated_payloads_are_read_alike(claims: dict[str, Any]) -> None:
    header = {"alg": "RS256", "kid": ISSUER.kid, "typ": "JWT"}
    token = sign_jwt(header, {**claims, **ISSUER.claims("user_1")}, ISSUER.private_key)
    jws_module.remember_header(token, jws_module.split_token(token)[0])
    assert_agrees(token)
