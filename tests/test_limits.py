"""Limits: oversized tokens, absurd claims, odd and repeated Authorization headers.

A token over 16 KiB is refused before any of it is decoded; inside the limit, deep nesting,
long strings and many keys are answered with a 401 or handled, never a 5xx; error messages do
not grow with the input. Ambiguous credentials (more than one Authorization header) are refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pydantic_core
import pytest
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    CurrentUserDep,
    get_settings,
    verify_token,
)
from clerk_deps import jws as jws_module
from clerk_deps import token_reading as reading_module
from clerk_deps.testing import TestIssuer, sign_jwt

ISSUER = TestIssuer()
LIMIT = 16 * 1024
RSA_2048_SIGNATURE_CHARS = 342  # 256 bytes, base64url without padding


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def build_app(settings: ClerkSettings) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, Any]:
        return {"sub": user.sub, "sub_length": len(user.sub)}

    @app.get("/claims")
    async def claims(user: CurrentUserDep) -> ClerkClaims:
        """Echoes the claims, as many apps do (``return user``)."""
        return user

    app.dependency_overrides[get_settings] = lambda: settings
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_app(ISSUER.settings()), raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason_of(response: httpx.Response) -> str:
    assert "Traceback" not in response.text
    assert response.status_code < 500, response.text
    return str(response.json()["detail"]["reason"])


# -- tokens of an exact size ---------------------------------------------------------------


def signed_token_of_length(length: int, **claims: Any) -> str:
    """A validly signed session token exactly ``length`` characters long.

    Unpadded base64url cannot have every length (never 1 mod 4), so both the header and the
    payload are padded: the two together reach any total.
    """
    for header_pad in range(8):
        header = ISSUER.header(x_pad="h" * header_pad)
        header_chars = len(b64(json.dumps(header, separators=(",", ":"))))
        payload_chars = length - header_chars - RSA_2048_SIGNATURE_CHARS - 2
        payload = ISSUER.claims(pad="", **claims)
        base = len(json.dumps(payload, separators=(",", ":")))
        for extra in range(max(0, payload_chars * 3 // 4 - base - 3), payload_chars * 3 // 4):
            payload["pad"] = "p" * extra
            if len(b64(json.dumps(payload, separators=(",", ":")))) == payload_chars:
                token = sign_jwt(header, payload, ISSUER.private_key)
                assert len(token) == length
                return token
    raise AssertionError(f"no token of length {length}")


def unsigned_token_of_length(length: int, header: dict[str, Any]) -> str:
    """``header.payload.signature`` of exactly ``length`` characters, signature not valid."""
    header_part = b64(json.dumps(header))
    for pad in range(4):
        payload = b64(json.dumps({**ISSUER.claims(), "p": "q" * pad}))
        signature_chars = length - len(header_part) - len(payload) - 2
        if signature_chars > 0 and signature_chars % 4 != 1:
            return f"{header_part}.{payload}.{'A' * signature_chars}"
    raise AssertionError(f"no token of length {length}")


class CountingModule:
    """Stands in for a module and counts calls to its functions (classes are passed through,
    so ``except json.JSONDecodeError`` still works)."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if not (inspect.isfunction(value) or inspect.isbuiltin(value)):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return value(*args, **kwargs)

        return counted


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Counts every json/base64 call that verification makes; returns a reader of the log."""
    counters = [CountingModule(json), CountingModule(binascii), CountingModule(pydantic_core)]
    monkeypatch.setattr(jws_module, "json", counters[0])
    monkeypatch.setattr(jws_module, "binascii", counters[1])
    monkeypatch.setattr(jws_module, "from_json", counters[2].from_json)
    calls = counters[2].calls
    decode = jws_module._b64decode

    def counted_b64decode(segment: bytes) -> bytes:
        calls.append("b64decode")
        return decode(segment)

    monkeypatch.setattr(jws_module, "_b64decode", counted_b64decode)
    read, at_once = reading_module.read_payload, reading_module._READER
    assert at_once is not None  # pydantic-core decodes base64url here

    def counted_read(raw: bytes) -> Any:
        calls.append("read_payload")
        return read(raw)

    def counted_at_once(segments: bytes) -> Any:
        calls.append("read_at_once")
        return at_once(segments)

    monkeypatch.setattr(reading_module, "read_payload", counted_read)
    monkeypatch.setattr(reading_module, "_READER", counted_at_once)
    return lambda: [call for counter in counters for call in counter.calls]


def test_the_fixtures_make_tokens_of_exact_lengths() -> None:
    for length in (LIMIT - 1, LIMIT, LIMIT + 1):
        assert len(signed_token_of_length(length)) == length
        assert len(unsigned_token_of_length(length, {"alg": "none"})) == length


@pytest.mark.parametrize("length", [LIMIT - 1, LIMIT])
def test_a_valid_token_up_to_16_kib_is_verified(client: TestClient, length: int) -> None:
    response = client.get("/me", headers=bearer(signed_token_of_length(length)))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user_test"


def test_a_valid_token_one_byte_over_16_kib_is_refused(client: TestClient) -> None:
    response = client.get("/me", headers=bearer(signed_token_of_length(LIMIT + 1)))
    assert response.status_code == 401
    assert reason_of(response) == "token-invalid"
    assert "16 KiB" in response.json()["detail"]["message"]


def test_size_is_checked_before_anything_is_decoded(
    client: TestClient, decoders: Callable[[], list[str]]
) -> None:
    # Inside the limit the token is decoded: proves the counters see the decoding.
    inside = client.get("/me", headers=bearer(signed_token_of_length(LIMIT)))
    assert inside.status_code == 200
    assert "read_at_once" in decoders() or {"read_payload", "b64decode"} <= set(decoders())
    seen = len(decoders())

    for token in (signed_token_of_length(LIMIT + 1), "A" * (1024 * 1024), "." * (LIMIT + 1)):
        response = client.get("/me", headers=bearer(token))
        assert reason_of(response) == "token-invalid"
        assert len(decoders()) == seen, "an oversized token was decoded"


@pytest.mark.parametrize(
    ("length", "reason"),
    [(LIMIT, "token-invalid-algorithm"), (LIMIT + 1, "token-invalid")],
    ids=["at-limit-parsed", "over-limit-not-parsed"],
)
def test_an_oversized_alg_none_token_is_refused_for_its_size_not_its_header(
    client: TestClient, length: int, reason: str
) -> None:
    """Seen from outside: the header of an oversized token is never read."""
    token = unsigned_token_of_length(length, {"alg": "none", "typ": "JWT"})
    response = client.get("/me", headers=bearer(token))
    assert reason_of(response) == reason


def test_oversized_cookie_is_refused_the_same_way(client: TestClient) -> None:
    client.cookies.set("__session", signed_token_of_length(LIMIT + 1))
    response = client.get("/me")
    assert reason_of(response) == "token-invalid"
    assert "16 KiB" in response.json()["detail"]["message"]


# -- absurd claims inside the limit --------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["header", "payload"])
def test_deep_nesting_is_token_invalid_not_a_recursion_error(
    client: TestClient, where: str
) -> None:
    header = '{"alg":"RS256","kid":"ins_test_key","deep":' + nested(5000) + "}"
    payload = '{"sub":"user_test","deep":' + nested(5000) + "}"
    if where == "payload":
        header = json.dumps(ISSUER.header())
    else:
        payload = json.dumps(ISSUER.claims())
    token = f"{b64(header)}.{b64(payload)}.{b64(b'sig')}"
    assert len(token) <= LIMIT
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert reason_of(response) == "token-invalid"


def test_deep_nesting_in_a_validly_signed_token_is_token_invalid(client: TestClient) -> None:
    header = json.dumps(ISSUER.header(), separators=(",", ":"))
    claims = json.dumps(ISSUER.claims(), separators=(",", ":"))[:-1]
    payload = claims + ',"deep":' + nested(5000) + "}"
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = ISSUER.private_key.sign(signing_input.encode(), PKCS1v15(), SHA256())
    token = f"{signing_input}.{b64(signature)}"
    assert len(token) <= LIMIT
    response = client.get("/me", headers=bearer(token))
    assert reason_of(response) == "token-invalid"


@pytest.mark.parametrize("depth", [50, 400, 900])
def test_nesting_that_parses_is_handled(client: TestClient, depth: int) -> None:
    """Nesting Python's decoder accepts flows on as a custom claim (or a malformed Clerk
    claim, which reads as absent) without breaking anything downstream."""
    value = nested_claim(depth)
    for claims in ({"deep": value}, {"o": value, "act": None}, {"fva": value}):
        response = client.get("/me", headers=bearer(ISSUER.token(**claims)))
        assert response.status_code in (200, 401), response.text
        if response.status_code == 401:
            assert reason_of(response) == "token-invalid"


def nested_claim(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_moderate_nesting_is_accepted_and_echoed(client: TestClient) -> None:
    token = ISSUER.token(meta={"a": nested_claim(20)})
    response = client.get("/claims", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["a"] == nested_claim(20)


@pytest.mark.parametrize("depth", [300, 900])
def test_claims_nested_hundreds_of_levels_deep_are_token_invalid(
    client: TestClient, depth: int
) -> None:
    # Clerk's own claims nest 2 levels; a custom claim copied from user metadata (which a user
    # may be able to write) is the way such a token could come signed by the real issuer.
    response = client.get("/claims", headers=bearer(ISSUER.token(meta=nested_claim(depth))))
    assert response.status_code == 401, response.status_code
    assert reason_of(response) == "token-invalid"


def test_a_long_sub_is_verified_and_long_values_do_not_grow_error_messages(
    client: TestClient,
) -> None:
    long_sub = "user_" + "x" * 10_000
    ok = client.get("/me", headers=bearer(ISSUER.token(long_sub)))
    assert ok.status_code == 200
    assert ok.json()["sub_length"] == len(long_sub)

    long_text = "https://evil.example/" + "y" * 10_000
    for claims in ({"iss": long_text}, {"sid": None, "x": long_text}):
        response = client.get("/me", headers=bearer(ISSUER.token(**claims)))
        assert response.status_code == 401
        assert len(response.json()["detail"]["message"]) < 1000
    alg = client.get("/me", headers=bearer(ISSUER.token(headers={"alg": "Z" * 10_000})))
    assert reason_of(alg) == "token-invalid-algorithm"
    assert len(alg.json()["detail"]["message"]) < 1000


def test_huge_numbers_are_token_invalid(client: TestClient) -> None:
    # Over Python's int-string limit (4,300 digits): the decoder refuses it (ValueError).
    digits = "9" * 5000
    payload = json.dumps(ISSUER.claims(), separators=(",", ":"))[:-1] + f',"exp2":{digits}}}'
    token = f"{b64(json.dumps(ISSUER.header()))}.{b64(payload)}.{b64(b'sig')}"
    assert reason_of(client.get("/me", headers=bearer(token))) == "token-invalid"
    for exp in (10**300, 1e308, float("inf"), float("nan"), -(10**300)):
        response = client.get("/me", headers=bearer(ISSUER.token(exp=exp)))
        assert reason_of(response) in ("token-invalid", "token-expired"), exp


def test_many_keys(client: TestClient, decoders: Callable[[], list[str]]) -> None:
    def many(count: int) -> dict[str, int]:
        return {format(i, "x"): 0 for i in range(count)}

    within = ISSUER.token(**many(1_000))
    assert len(within) <= LIMIT
    assert client.get("/me", headers=bearer(within)).status_code == 200

    before = len(decoders())
    over = ISSUER.token(**many(10_000))
    assert len(over) > LIMIT
    response = client.get("/me", headers=bearer(over))
    assert reason_of(response) == "token-invalid"
    assert len(decoders()) == before


def test_verify_token_refuses_oversized_input_directly() -> None:
    async def outcome(token: str) -> str:
        try:
            await verify_token(token, ISSUER.settings())
        except ClerkAuthError as error:
            return error.reason.value
        return "verified"

    assert asyncio.run(outcome(signed_token_of_length(LIMIT))) == "verified"
    assert asyncio.run(outcome(signed_token_of_length(LIMIT + 1))) == "token-invalid"
    assert asyncio.run(outcome("é" * (LIMIT + 1))) == "token-invalid"


# -- the Authorization header ----------------------------------------------------------------


def test_very_long_header_values(client: TestClient) -> None:
    huge = "A" * (1024 * 1024)
    assert reason_of(client.get("/me", headers={"Authorization": f"Bearer {huge}"})) == (
        "token-invalid"
    )
    assert reason_of(client.get("/me", headers={"Authorization": f"Basic {huge}"})) == (
        "session-token-missing"
    )
    spaces = client.get("/me", headers={"Authorization": "Bearer" + " " * (1024 * 1024)})
    assert reason_of(spaces) == "session-token-missing"


@pytest.mark.parametrize("value", ["", " ", "\t", " \t  \t"], ids=repr)
def test_a_header_of_only_whitespace_is_no_token(client: TestClient, value: str) -> None:
    response = client.get("/me", headers={"Authorization": value})
    assert response.status_code == 401
    assert reason_of(response) == "session-token-missing"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("value", ["Bearer\t", "Bearer\t\t\t", "Bearer \t ", "bearer\t \t"])
def test_bearer_followed_by_tabs_is_no_token(client: TestClient, value: str) -> None:
    response = client.get("/me", headers={"Authorization": value})
    assert reason_of(response) == "session-token-missing"


def test_bearer_and_token_separated_by_a_tab_is_not_a_bearer_credential(
    client: TestClient,
) -> None:
    """RFC 7235: the scheme and its credentials are separated by spaces (1*SP), not tabs."""
    response = client.get("/me", headers={"Authorization": f"Bearer\t{ISSUER.token()}"})
    assert response.status_code == 401
    assert reason_of(response) == "session-token-missing"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer \t ", "bearer"])
def test_an_empty_bearer_wins_over_a_good_cookie(client: TestClient, header: str) -> None:
    client.cookies.set("__session", ISSUER.token())
    response = client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert reason_of(response) == "session-token-missing"


def test_headers_merged_by_a_proxy_are_not_a_token(client: TestClient) -> None:
    """Proxies may join repeated headers with a comma: that is no compact JWS."""
    merged = f"Bearer {ISSUER.token()}, Bearer {ISSUER.token('user_other')}"
    assert reason_of(client.get("/me", headers={"Authorization": merged})) == "token-invalid"


@pytest.mark.parametrize(
    "values",
    [("valid", "garbage"), ("garbage", "valid"), ("valid", "valid")],
    ids=["valid-then-garbage", "garbage-then-valid", "same-twice"],
)
def test_more_than_one_authorization_header_is_refused(
    client: TestClient, values: tuple[str, str]
) -> None:
    token = ISSUER.token()
    headers = [("Authorization", f"Bearer {token if v == 'valid' else v}") for v in values]
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert reason_of(response) == "token-invalid"
    message = response.json()["detail"]["message"].lower()
    assert "authorization" in message
    assert any(words in message for words in ("more than one", "multiple", "exactly one"))
