"""The shortcuts of the verification path give exactly what the general path gives.

Each shortcut (claims built without pydantic's validation, organization permissions and roles
remembered, the key source and cache remembered per settings object, known headers decoded
once, the signature checked with ``cryptography`` directly) is compared here with the path it
replaces, on hand-picked payloads and on generated ones. Speed is measured in bench/.
"""

from __future__ import annotations

import base64
import gc
import json
import math
import types
from typing import Any, Union, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jose.backends.rsa_backend import RSAKey
from pydantic import ValidationError

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    ErrorReason,
    claim_checks,
    token_claims,
    verify_token,
)
from clerk_deps import claims as claims_module
from clerk_deps import jws as jws_module
from clerk_deps import tokens as tokens_module
from clerk_deps.claims import ReadOnlyDict, ReadOnlyList, decode_org_permissions
from clerk_deps.keys import clear_key_sources
from clerk_deps.testing import TestIssuer, sign_jwt
from clerk_deps.testing.issuer import FORGER_SLOT, IsolatedSettings, shared_private_key
from clerk_deps.token_cache import selected_for
from clerk_deps.token_reading import ReadToken

ISSUER = TestIssuer()
CONTEXT = claims_module._TOKEN_CONTEXT


def validated(payload: dict[str, Any]) -> ClerkClaims:
    """The general path: pydantic's validation with the model's own normalisation."""
    return ClerkClaims.model_validate(payload, context=CONTEXT)


def assert_read_only(value: Any) -> None:
    if isinstance(value, dict):
        assert type(value) is ReadOnlyDict
        for item in value.values():
            assert_read_only(item)
    elif isinstance(value, list):
        assert type(value) is ReadOnlyList
        for item in value:
            assert_read_only(item)


def one_pass(payload: dict[str, Any]) -> ClerkClaims | None:
    """The claims the verification path builds from ``payload``'s JSON text without pydantic's
    validation, or ``None`` when it leaves them to pydantic."""
    read = token_claims.read_payload(json.dumps(payload).encode())
    return None if read is None else token_claims.claims_from_payload(read)


def token_read_of(raw: bytes, read: token_claims.ValidatedPayload | None) -> ReadToken:
    """A token read with payload text ``raw``: read in one pass (``read``), or as a dict."""
    segment = base64.urlsafe_b64encode(raw).rstrip(b"=")
    return ReadToken({}, b"e30." + segment, b"", read, json.loads(raw) if read is None else None)


def assert_same(payload: dict[str, Any]) -> ClerkClaims:
    """The one-pass build of ``payload`` is taken and equals pydantic's, read-only and frozen."""
    fast = one_pass(payload)
    assert fast is not None, payload
    slow = validated(json.loads(json.dumps(payload)))
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert type(fast.org_permissions) is ReadOnlyList
    for value in (fast.model_extra or {}).values():
        assert_read_only(value)
    assert type(fast.model_extra) is type(slow.model_extra) is ReadOnlyDict
    with pytest.raises(ValidationError):
        fast.sub = "someone else"  # type: ignore[misc]
    return fast


ORG = {
    "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3,1"},
    "fea": "o:invoices,o:members,u:export",
}
PAYLOADS = {
    "session without organization": {},
    "v2 with organization, plan, azp, sts": {**ORG, "pla": "o:pro", "azp": "https://a.b",
                                             "sts": "active"},
    "v1 flat organization": {"v": None, "org_id": "org_1", "org_role": "org:admin",
                             "org_permissions": ["org:a:read", 5]},
    "v2 flat org claims grant nothing": {"org_id": "org_1", "org_role": "admin"},
    "custom claims, nested": {"email": "ada@example.com", "meta": {"a": [1, {"b": [2]}]},
                              "tags": ["x", ["y"]]},
    "fractional NumericDates": {"iat": 1700000000.9, "exp": 1700000060.5, "nbf": 1699999990.1},
    "malformed fva, pla and fea": {"fva": [1], "pla": 5, "fea": ["o:x"]},
    "empty o": {"o": {}},
    "o with wrong types": {"o": {"id": 5, "slg": [], "rol": {"x": 1}, "per": 1, "fpm": None}},
}  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        {"act": {"sub": "user_admin", "iss": "https://x.example", "extra": [1]}},  # an Actor
        {"act": {}},
        {"v": True},  # pydantic turns a bool into an int: left to pydantic
        {"sid": 5},  # pydantic refuses: so does the shortcut, by leaving it to pydantic
        {"iat": "1700000000"},
    ],
)
def test_payloads_the_shortcut_leaves_to_pydantic(extra: dict[str, Any]) -> None:
    payload = {**ISSUER.claims("user_1", now=1_700_000_000), **extra}
    assert one_pass(payload) is None


def test_a_clerk_token_takes_the_shortcut() -> None:
    payload = ISSUER.claims(
        "user_1", org_id="org_1", org_role="admin", org_permissions=["org:a:read"], pla="u:free"
    )
    assert assert_same(payload) == validated(payload)


def test_copies_do_not_share_their_fields_set() -> None:
    first, second = assert_same(ISSUER.claims("user_1")), assert_same(ISSUER.claims("user_2"))
    assert first.model_fields_set is second.model_fields_set  # one set per shape of token
    copied = first.model_copy(update={"email": "ada@example.com"})
    assert "email" in copied.model_fields_set
    assert "email" not in first.model_fields_set and "email" not in second.model_fields_set


def test_subclasses_are_validated_by_pydantic() -> None:
    class Claims(ClerkClaims):
        tenant: str = "none"

    claims = Claims.from_payload({**ISSUER.claims("user_1"), "tenant": "t1"})
    assert type(claims) is Claims and claims.tenant == "t1"


def test_the_field_table_matches_the_model() -> None:
    plain = token_claims._PLAIN_FIELDS
    others = token_claims._OTHER_FIELDS
    assert set(ClerkClaims.model_fields) == set(plain) | others
    assert list(token_claims._FIELD_ORDER) == list(ClerkClaims.model_fields)
    for name, kind in plain.items():
        field = ClerkClaims.model_fields[name]
        assert not field.metadata, name  # no validator the shortcut would skip
        annotation = field.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            assert set(get_args(annotation)) == {kind, type(None)}, name
            assert field.default is None, name
        else:
            assert annotation is kind and field.is_required(), name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
claim_names = st.sampled_from(
    [*ClerkClaims.model_fields, "o", "org_id", "custom", "per", "_private", "model_config"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(claim_names, json_values, max_size=8), st.booleans())
def test_payloads_read_in_one_pass_give_the_same_claims(
    changes: dict[str, Any], with_org: bool
) -> None:
    payload = {**ISSUER.claims("user_1", now=1_700_000_000), **(ORG if with_org else {})}
    payload.update(changes)
    assert_same_from_json(payload)


def assert_same_from_json(payload: dict[str, Any]) -> ClerkClaims | None:
    """The JSON text's one-pass reading builds what pydantic builds from json.loads, or
    leaves it to pydantic."""
    raw = json.dumps(payload).encode()
    read = token_claims.read_payload(raw)
    fast = None if read is None else token_claims.claims_from_payload(read)
    try:
        slow = validated(json.loads(raw))
    except ValidationError:
        assert fast is None
        return None
    if fast is not None:
        assert fast == slow and repr(fast) == repr(slow)
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_dump_json() == slow.model_dump_json()
        assert type(fast.model_extra) is ReadOnlyDict and type(fast.org_permissions) is ReadOnlyList
        for value in (fast.model_extra or {}).values():
            assert_read_only(value)
    return fast


@pytest.mark.parametrize("extra", PAYLOADS.values(), ids=list(PAYLOADS))
def test_table_payloads_read_in_one_pass_give_the_same_claims(extra: dict[str, Any]) -> None:
    payload = {**ISSUER.claims("user_1", now=1_700_000_000), **extra}
    assert_same_from_json({name: value for name, value in payload.items() if value is not None})


def test_a_clerk_payload_is_read_and_built_in_one_pass() -> None:
    payload = ISSUER.claims("user_1", now=NOW, **ORG, pla="o:pro", azp="https://a.b")
    assert assert_same_from_json(payload) is not None
    deep = {"deep": [[1]] * 40}  # 41 brackets: it may nest deeper than 32
    for unusual in ({"nbf": None}, {"iat": NOW + 0.5}, {"v": True}, deep):
        raw = json.dumps({**payload, **unusual}).encode()
        assert token_claims.read_payload(raw) is None, unusual  # left to the dict path


def test_remembered_permissions_are_a_fresh_list_each_time() -> None:
    first = decode_org_permissions("o:a,o:b", "read,write", "3,1")
    assert first == ["org:a:read", "org:a:write", "org:b:read"]
    first.append("org:a:admin")
    assert decode_org_permissions("o:a,o:b", "read,write", "3,1") == [
        "org:a:read", "org:a:write", "org:b:read",
    ]  # fmt: skip
    assert decode_org_permissions(["o:a"], "read", "1") == []  # not a string: not remembered


# -- what verify_token remembers per settings object ----------------------------------------


def test_settings_select_their_source_and_cache_once() -> None:
    settings = ISSUER.settings()
    source, cache, rules = selected_for(settings)
    assert selected_for(settings) == (source, cache, rules)
    assert cache is not None
    assert rules.issuer == settings.issuer and rules.leeway == settings.leeway
    clear_key_sources()
    again = selected_for(settings).source
    assert again is not source  # a fresh source after clear_key_sources()


def test_forgotten_settings_leave_no_entry() -> None:
    from clerk_deps import token_cache

    settings = ISSUER.settings()
    selected_for(settings)
    key = id(settings)
    assert key in token_cache._selected
    del settings
    gc.collect()
    assert key not in token_cache._selected


def test_settings_without_a_key_source_raise_each_time() -> None:
    settings = IsolatedSettings()
    for _ in range(2):
        with pytest.raises(ClerkAuthError) as caught:
            selected_for(settings)
        assert caught.value.reason is ErrorReason.AUTH_NOT_CONFIGURED


# -- known headers and the signature -----------------------------------------------------


async def test_a_known_header_does_not_vouch_for_the_rest_of_the_token() -> None:
    settings = ISSUER.settings()
    token = ISSUER.token("user_1")
    await verify_token(token, settings)
    head = token.split(".")[0]
    assert head in jws_module._known_headers
    forged = sign_jwt(ISSUER.header(), ISSUER.claims("user_2"), shared_private_key(FORGER_SLOT))
    assert forged.split(".")[0] == head
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(forged, settings)
    assert caught.value.reason is ErrorReason.TOKEN_INVALID_SIGNATURE
    bad_payload = f"{head}.e30!.{token.split('.')[2]}"
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(bad_payload, settings)
    assert caught.value.reason is ErrorReason.TOKEN_INVALID


async def test_known_headers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jws_module, "_known_headers", {})
    settings = ISSUER.settings()
    for index in range(jws_module._KNOWN_HEADERS_MAX + 3):
        await verify_token(ISSUER.token("user_1", headers={"x": index}), settings)
    assert 0 < len(jws_module._known_headers) <= jws_module._KNOWN_HEADERS_MAX


def test_keys_without_a_cryptography_key_verify_through_python_jose() -> None:
    token = ISSUER.token("user_1")
    head, body, signature = token.split(".")
    signing_input = f"{head}.{body}".encode()
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    key = RSAKey(ISSUER.public_pem, "RS256")
    assert tokens_module._signature_verifies(key, signing_input, raw)
    assert not tokens_module._signature_verifies(key, signing_input + b"x", raw)


def test_a_token_read_shows_none_of_its_parts() -> None:
    token = ISSUER.token("user_1")
    shown = repr(tokens_module.read_token(token))
    assert all(part[:16] not in shown for part in token.split("."))


def test_exact_numeric_dates_are_left_to_pydantic_and_kept_exact_for_the_cache() -> None:
    payload = {**ISSUER.claims("user_1", now=NOW), "exp": NOW + 60.75}
    assert one_pass(payload) is None
    raw = json.dumps(payload).encode()
    rules = claim_checks.ClaimRules.of(ISSUER.settings())
    claims, exp, _ = claim_checks.session_claims(
        token_read_of(raw, None), ISSUER.settings(), rules, NOW
    )
    assert claims.exp == math.floor(NOW + 60.75) and exp == NOW + 60.75


# -- JSON: pydantic-core's parser reads every payload as json.loads does ------------------

JSON_TEXTS = [
    b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":123456789012345678901234567890}',
    b'{"a":1e400}', b'{"a":"\\ud800"}', b'{"a":"\\ud83d\\ude00"}', b'{"a":"x\x01y"}',
    b'{"a":1,}', b' {"a":1} ', b'{"a":1} x', b'\xef\xbb\xbf{"a":1}', b'{"a":"\xff"}',
    b'{"a":-0.0}', b'{"a":1E2}', b'{"a":01}', b'{"a":.5}', b'{"a":"\\u0000"}', b'[]', b'"s"',
    b'{"a":2.2250738585072011e-308}', b'{"a":0.30000000000000004}', b'{"\\u00e9":1}',
    b'{"a":1}\x00', b"{" * 40 + b"}" * 40, b'{"a":' * 40 + b"1" + b"}" * 40, b"",
]  # fmt: skip


def decoded_as_json_loads(raw: bytes) -> tuple[str, str]:
    """What json.loads makes of a payload segment, as the verifier words it."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return ("refused", "not a JWT: the payload is not JSON")
    if not isinstance(value, dict):
        return ("refused", "not a JWT: the payload is not a JSON object")
    return ("read", repr(value))


def decoded_by_the_verifier(raw: bytes) -> tuple[str, str]:
    try:
        return ("read", repr(jws_module._decode_segment(raw, "payload")))
    except ClerkAuthError as error:
        return ("refused", error.message)


@pytest.mark.parametrize("raw", JSON_TEXTS)
def test_a_segment_reads_as_json_loads_reads_it(raw: bytes) -> None:
    got, expected = decoded_by_the_verifier(raw), decoded_as_json_loads(raw)
    if "deeper" in got[1]:  # the depth bound refuses some of what json.loads reads
        assert expected[0] == "read" and raw.count(b"{") > jws_module.MAX_JSON_DEPTH
    else:
        assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), json_values | st.floats(), max_size=6), st.booleans())
def test_generated_payloads_read_as_json_loads_reads_them(
    value: dict[str, Any], ascii_only: bool
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert decoded_by_the_verifier(raw) == decoded_as_json_loads(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_both_base64url_decoders_read_every_segment_alike(raw: bytes) -> None:
    segment = base64.urlsafe_b64encode(raw).rstrip(b"=")
    assert jws_module._b64decode(segment) == jws_module._a2b_urlsafe(segment) == raw


def test_without_pydantic_cores_base64_the_standard_library_decodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert jws_module._pydantic_core_decoder() is not None  # this pydantic-core has one

    def older_core_config(**options: Any) -> Any:
        raise TypeError(f"unexpected options {sorted(options)}")  # as before val_json_bytes

    monkeypatch.setattr(jws_module.core_schema, "CoreConfig", older_core_config)
    assert jws_module._pydantic_core_decoder() is None


# -- the one-pass claim check never accepts what the checks one by one refuse ----------------

NOW = 1_700_000_000
RULE_SETTINGS = [
    ISSUER.settings(),
    ISSUER.settings(authorized_parties=["https://a.example"], leeway=0, verify_iat=False),
    ISSUER.settings(audience=["api", "web"], accept_jwt_templates=True,
                    accept_pending_sessions=True),
]  # fmt: skip
CLAIM_VALUES = (
    [None, 0, 1, -1, True, 1.5, NOW, NOW - 1, NOW + 1, NOW - 5, NOW + 5, NOW - 6, NOW + 6,
     NOW - 120, NOW + 120, NOW + 0.5, float(NOW),
     2**63, -(2**63), 2**64, math.inf, math.nan, "", "x", "mch_1", "user_1", "pending",
     "active", ISSUER.issuer, ISSUER.issuer + "/", "https://a.example", "api", ["api"],
     ["x", "web"], [], {}, {"a": 1}]
)  # fmt: skip
CHECKED_NAMES = ["sub", "iat", "exp", "nbf", "sid", "iss", "aud", "azp", "sts", "jti", "email", "v"]


def assert_one_pass_agrees(changes: dict[str, Any], settings_: ClerkSettings) -> None:
    payload = {**ISSUER.claims("user_1", now=NOW), **changes}
    rules = claim_checks.ClaimRules.of(settings_)
    try:
        claim_checks.check_claims(payload, settings_, NOW)
        one_by_one: Any = ClerkClaims.from_payload(payload)
    except (ClerkAuthError, ValidationError) as error:
        one_by_one = error
    raw = json.dumps(payload).encode()
    one_read = token_claims.read_payload(raw)
    if (
        one_read is not None
        and rules.passes(one_read, NOW)
        and token_claims.claims_from_payload(one_read) is not None
    ):
        assert isinstance(one_by_one, ClerkClaims), changes  # never accepts a refused token
    for read in (None, one_read):  # from the dict, from the JSON text
        try:
            result: Any = claim_checks.session_claims(
                token_read_of(raw, read), settings_, rules, NOW
            )[0]
        except ClerkAuthError as error:
            if isinstance(one_by_one, ClerkAuthError):  # the same reason and message
                assert (error.reason, error.message) == (one_by_one.reason, one_by_one.message)
            else:
                assert isinstance(one_by_one, ValidationError), changes
        else:
            assert repr(result) == repr(one_by_one), changes
            assert result == one_by_one or "nan" in repr(result)  # NaN is not equal to itself
            assert result.model_fields_set == one_by_one.model_fields_set


def test_the_one_pass_check_agrees_on_every_single_claim_change() -> None:
    for settings_ in RULE_SETTINGS:
        for name in CHECKED_NAMES:
            for value in CLAIM_VALUES:
                assert_one_pass_agrees({name: value}, settings_)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from(CHECKED_NAMES), st.sampled_from(CLAIM_VALUES), max_size=6),
    st.sampled_from(RULE_SETTINGS),
)
def test_the_one_pass_check_agrees_on_generated_changes(
    changes: dict[str, Any], settings_: ClerkSettings
) -> None:
    assert_one_pass_agrees(changes, settings_)


def test_a_clerk_payload_passes_in_one_pass() -> None:
    payload = ISSUER.claims("user_1", now=NOW, **ORG)
    read = token_claims.read_payload(json.dumps(payload).encode())
    assert read is not None and claim_checks.ClaimRules.of(ISSUER.settings()).passes(read, NOW + 1)


# -- what the builder remembers: shapes and organizations --------------------------------


def test_organizations_of_equal_values_of_other_types_are_not_confused() -> None:
    for o in ({"id": "org_1", "rol": "admin"}, {"id": 1, "rol": "admin"},
              {"id": True, "rol": "admin"}, {"id": "org_1", "rol": "admin"}):  # fmt: skip
        assert_same({**ISSUER.claims("user_1", now=NOW), "o": o})


def test_tokens_of_one_member_share_the_organization() -> None:
    first = assert_same(ISSUER.claims("user_1", now=NOW, **ORG))
    second = assert_same(ISSUER.claims("user_2", now=NOW + 5, **ORG))
    assert first.org_permissions is second.org_permissions  # read-only, so shared
    assert first.model_extra is not None and second.model_extra is not None
    assert first.model_extra["o"] is second.model_extra["o"]
    assert first.model_extra is second.model_extra  # o is their only other claim
    assert first.org_permissions == ["org:invoices:read", "org:invoices:manage",
                                     "org:members:read"]  # fmt: skip
    with pytest.raises(TypeError):
        first.model_extra["o"] = {}
    custom = assert_same(ISSUER.claims("user_3", now=NOW, plan="gold", **ORG))
    assert custom.model_extra is not None and custom.model_extra is not first.model_extra
    assert custom.model_extra == {"o": first.model_extra["o"], "plan": "gold"}
    assert custom.model_extra["o"] is first.model_extra["o"]


def test_remembered_organizations_and_fields_sets_are_bounded() -> None:
    for index in range(token_claims._ORGANIZATIONS_MAX + 5):
        assert one_pass({**ISSUER.claims("user_1", now=NOW), "o": {"id": f"org_{index}"}})
    assert 0 < len(token_claims._organizations) <= token_claims._ORGANIZATIONS_MAX
    for index in range(token_claims._FIELDS_SETS_MAX + 5):
        raw = json.dumps({**ISSUER.claims("user_1", now=NOW), f"c{index}": 1}).encode()
        read = token_claims.read_payload(raw)
        assert read is not None and token_claims.claims_from_payload(read) is not None
    assert len(token_claims._fields_sets) == token_claims._FIELDS_SETS_MAX


def test_tokens_of_one_shape_share_their_fields_set() -> None:
    claims = []
    for user in ("user_1", "user_2"):
        read = token_claims.read_payload(json.dumps(ISSUER.claims(user, now=NOW)).encode())
        assert read is not None
        claims.append(token_claims.claims_from_payload(read))
    first, second = claims
    assert first is not None and second is not None
    assert first.model_fields_set is second.model_fields_set
