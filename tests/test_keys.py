"""Key sources without a network: parsing key sets, the per-configuration registry, and the
faults a real key server cannot easily produce (httpx.MockTransport stands in for it).

The cache behaviour against a real key server is in tests/integration/test_key_cache.py.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import clerk_deps.jwks as jwks_module
import clerk_deps.keys as keys_module
from clerk_deps import ClerkAuthError, ClerkSettings, ErrorReason, warm_up
from clerk_deps._http import close_shared_client, shared_client
from clerk_deps.keys import (
    JwksKeySource,
    StaticKeySource,
    clear_key_sources,
    key_source_for,
    parse_key_set,
)
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.issuer import shared_private_key

WEAK_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ISSUER = TestIssuer(kid="ins_unit")
OTHER = TestIssuer(kid="ins_other", private_key=shared_private_key(44))
JWKS_URL = "https://clerk.test.example/.well-known/jwks.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rsa_jwk(**changes: Any) -> dict[str, Any]:
    """The issuer's public JWK with fields replaced (``None`` removes one)."""
    jwk = {**ISSUER.jwks()["keys"][0], **changes}
    return {name: value for name, value in jwk.items() if value is not None}


def jwks_settings(**overrides: Any) -> ClerkSettings:
    values: dict[str, Any] = {"jwt_key": None, "jwks_url": JWKS_URL}
    values.update(overrides)
    return ISSUER.settings(**values)


# -- parse_key_set ------------------------------------------------------------------------

SKIPPED_ENTRIES = {
    "EC key": {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
    "symmetric key": {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
    "no kid": rsa_jwk(kid=None),
    "empty kid": rsa_jwk(kid=""),
    "kid not a string": rsa_jwk(kid=7),
    "encryption key": rsa_jwk(kid="enc", use="enc"),
    "use not a string": rsa_jwk(kid="use-list", use=["sig"]),
    "RS512 key": rsa_jwk(kid="rs512", alg="RS512"),
    "PS256 key": rsa_jwk(kid="ps256", alg="PS256"),
    "n not base64url": rsa_jwk(kid="bad-n", n="!!!"),
    "n a number": rsa_jwk(kid="n-int", n=12345),
    "n missing": rsa_jwk(kid="no-n", n=None),
    "e zero": rsa_jwk(kid="e-zero", e="AA"),
    "e missing": rsa_jwk(kid="no-e", e=None),
    "e a huge number": rsa_jwk(kid="e-int", e=10**12),  # python-jose would allocate 1 TB
    "e far too long": rsa_jwk(kid="e-long", e="AQAB" * 10),
    "1024-bit key": TestIssuer(kid="weak", private_key=WEAK_KEY).jwks()["keys"][0],
    "8200-bit key": rsa_jwk(kid="huge", n=_b64(b"\xff" * 1025)),
    "modulus over 2048 characters": rsa_jwk(kid="long-n", n="A" * 3000),
    "modulus of impossible length": rsa_jwk(kid="n-len", n="A" * 401),
    "not an object": "ins_unit",
}


@pytest.mark.parametrize("entry", SKIPPED_ENTRIES.values(), ids=SKIPPED_ENTRIES.keys())
def test_parse_key_set_skips_an_unusable_entry_and_keeps_the_rest(entry: Any) -> None:
    keys = parse_key_set({"keys": [entry, rsa_jwk()]})
    assert list(keys) == ["ins_unit"]


def test_parse_key_set_keeps_every_rsa_signing_key_with_a_kid() -> None:
    document = {
        "keys": [
            rsa_jwk(kid="plain"),
            rsa_jwk(kid="no-use-no-alg", use=None, alg=None),
            rsa_jwk(kid="with-private-part", d="AQAB", p="AQAB", q="AQAB"),
            OTHER.jwks()["keys"][0],
            *SKIPPED_ENTRIES.values(),
        ]
    }
    keys = parse_key_set(document)
    assert sorted(keys) == ["ins_other", "no-use-no-alg", "plain", "with-private-part"]
    assert "d" not in keys["with-private-part"].to_dict()  # only the public part is loaded
    signing_input, _, signature = ISSUER.token().rpartition(".")
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert keys["plain"].verify(signing_input.encode(), raw_signature)
    assert not keys["ins_other"].verify(signing_input.encode(), raw_signature)


@pytest.mark.parametrize(
    "document",
    [None, [], "keys", {"keys": None}, {"keys": {"kid": "x"}}, {"other": []}, {"keys": []}],
    ids=repr,
)
def test_parse_key_set_of_a_non_key_set_is_empty(document: Any) -> None:
    assert parse_key_set(document) == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["kty", "kid", "use", "alg", "n", "e", "keys"]), children)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(
    entries=st.lists(
        st.fixed_dictionaries(
            {"kty": st.sampled_from(["RSA", "EC"]), "kid": st.text(min_size=1, max_size=8)},
            optional={
                "n": json_values,
                "e": json_values,
                "use": json_values,
                "alg": json_values,
            },
        ),
        max_size=4,
    )
)
def test_parse_key_set_never_raises(entries: list[dict[str, Any]]) -> None:
    keys = parse_key_set({"keys": entries})
    assert set(keys) <= {entry["kid"] for entry in entries}


# -- key_source_for ----------------------------------------------------------------------


def test_a_pem_configuration_gets_a_static_source_that_ignores_the_kid() -> None:
    source = key_source_for(ISSUER.settings())
    assert isinstance(source, StaticKeySource)
    assert source.version == 0
    assert key_source_for(ISSUER.settings()) is source


async def test_the_static_source_needs_no_network() -> None:
    source = key_source_for(ISSUER.settings())
    await source.warm_up()
    key = await source.get_key(None)
    assert key is await source.get_key("any kid")
    assert source.key_at_hand("any kid") is key


def test_sources_are_shared_per_key_location_and_tuning() -> None:
    source = key_source_for(jwks_settings())
    assert isinstance(source, JwksKeySource)
    assert (source.url, source.ttl, source.cooldown, source.timeout) == (JWKS_URL, 300, 10, 5)
    assert key_source_for(jwks_settings(leeway=30)) is source  # verification policy is not keys
    assert key_source_for(jwks_settings(jwks_cache_ttl=60)) is not source
    assert key_source_for(jwks_settings(jwks_url=JWKS_URL + "?v=2")) is not source
    clear_key_sources()
    assert key_source_for(jwks_settings()) is not source


def test_the_issuer_alone_gives_its_well_known_key_set() -> None:
    source = key_source_for(ISSUER.settings(jwt_key=None))
    assert isinstance(source, JwksKeySource)
    assert source.url == f"{ISSUER.issuer}/.well-known/jwks.json"


def test_backend_api_sources_are_separated_by_secret_key() -> None:
    def backend(secret: str) -> ClerkSettings:
        return ISSUER.settings(jwt_key=None, issuer=None, secret_key=secret)

    alpha = key_source_for(backend("sk_test_alpha"))
    assert isinstance(alpha, JwksKeySource)
    assert alpha.url == "https://api.clerk.com/v1/jwks"
    assert key_source_for(backend("sk_test_alpha")) is alpha
    assert key_source_for(backend("sk_test_beta")) is not alpha
    assert "sk_test_alpha" not in repr(alpha)
    assert "sk_test_alpha" not in repr(vars(alpha))  # what a debugger or Sentry would show
    assert "Backend API key set" in repr(alpha)
    assert all("sk_test_alpha" not in repr(lookup) for lookup in keys_module._sources)


def test_no_key_source_is_a_500_that_names_the_variables() -> None:
    with pytest.raises(ClerkAuthError) as caught:
        key_source_for(ISSUER.settings(jwt_key=None, issuer=None))
    assert (caught.value.status_code, caught.value.reason) == (
        500,
        ErrorReason.AUTH_NOT_CONFIGURED,
    )
    for variable in ("CLERK_ISSUER", "CLERK_JWT_KEY", "CLERK_JWKS_URL", "CLERK_SECRET_KEY"):
        assert variable in caught.value.message


# -- faults, through httpx.MockTransport ----------------------------------------------------

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], list[httpx.Request]]]:
    """Route the key sources' HTTP calls to a handler; returns the list of requests seen."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        async def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await handler(request)

        client = httpx.AsyncClient(transport=httpx.MockTransport(record))
        monkeypatch.setattr(jwks_module, "shared_client", lambda: client)
        return seen

    yield install


def source_with_clock(**overrides: Any) -> tuple[JwksKeySource, FakeClock]:
    source = key_source_for(jwks_settings(**overrides))
    assert isinstance(source, JwksKeySource)
    clock = FakeClock()
    source.clock = clock
    return source, clock


async def key_set(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=ISSUER.jwks())


async def test_a_token_without_kid_is_refused_without_a_fetch(serve: Any) -> None:
    seen = serve(key_set)
    source, _ = source_with_clock()
    with pytest.raises(ClerkAuthError) as caught:
        await source.get_key(None)
    assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
    assert seen == []


async def test_the_fetch_sends_json_accept_and_no_secret_for_a_public_key_set(
    serve: Any,
) -> None:
    seen = serve(key_set)
    source, _ = source_with_clock()
    await source.get_key("ins_unit")
    assert len(seen) == 1
    assert seen[0].headers["accept"] == "application/json"
    assert "authorization" not in seen[0].headers


async def test_an_httpx_timeout_is_a_failed_refresh(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    seen = serve(time_out)
    source, _ = source_with_clock(http_timeout=2)
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    with pytest.raises(ClerkAuthError) as caught:
        await source.get_key("ins_unit")
    assert caught.value.reason is ErrorReason.JWK_FAILED_TO_LOAD
    assert caught.value.headers == {"Retry-After": "10"}
    assert f"{JWKS_URL} did not answer within 2 s" in caplog.records[-1].getMessage()
    assert len(seen) == 1


async def test_an_unexpected_error_is_a_failed_refresh_not_a_500(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("something nobody planned for")

    seen = serve(explode)
    source, clock = source_with_clock()
    caplog.set_level(logging.DEBUG, logger="clerk_deps")
    for _ in range(3):
        with pytest.raises(ClerkAuthError) as caught:
            await source.get_key("ins_unit")
        assert caught.value.reason is ErrorReason.JWK_FAILED_TO_LOAD
    assert len(seen) == 1  # the cooldown applies as after any failure
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "unexpected RuntimeError" in warning.getMessage()
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)

    clock.now += 10
    serve(key_set)
    assert await source.get_key("ins_unit") is not None


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(serve: Any) -> None:
    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return await key_set(request)

    seen = serve(slow)
    source, _ = source_with_clock()
    leaving = asyncio.create_task(source.get_key("ins_unit"))
    staying = asyncio.create_task(source.get_key("ins_unit"))
    await asyncio.sleep(0)  # both are now waiting for the one fetch
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.set()
    assert await staying is not None
    assert len(seen) == 1
    assert source.fetch_count == 1


async def test_a_key_is_at_hand_only_while_get_key_would_return_it_at_once(serve: Any) -> None:
    seen = serve(key_set)
    source, clock = source_with_clock(jwks_cache_ttl=10)
    assert source.key_at_hand("ins_unit") is None  # nothing fetched yet
    assert not seen
    await source.warm_up()
    key = source.key_at_hand("ins_unit")
    assert key is not None and key is await source.get_key("ins_unit")
    assert source.key_at_hand("ins_other") is None  # an unknown kid: get_key decides
    clock.now += 11
    assert source.key_at_hand("ins_unit") is None  # due for a refresh: get_key refreshes
    assert len(seen) == 1


async def test_version_changes_only_when_the_keys_change(serve: Any) -> None:
    served = {"jwks": ISSUER.jwks()}

    async def current(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=served["jwks"])

    serve(current)
    source, clock = source_with_clock(jwks_cache_ttl=1)
    await source.warm_up()
    first = source.version

    clock.now += 2
    await source.get_key("ins_unit")
    assert source.version == first  # same keys refetched

    other_material = {"keys": [{**OTHER.jwks()["keys"][0], "kid": "ins_unit"}]}
    served["jwks"] = other_material  # same kid, new key
    clock.now += 2
    await source.get_key("ins_unit")
    assert source.version == first + 1
    assert source.kids() == ["ins_unit"]


async def test_warm_up_without_keys_logs_and_returns(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": []})

    serve(empty)
    settings = jwks_settings()
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    await warm_up(settings)
    messages = [r.getMessage() for r in caplog.records]
    assert any("holds no usable RS256 signing key" in m for m in messages)
    assert any("warm-up could not load signing keys" in m for m in messages)
    source = key_source_for(settings)
    assert isinstance(source, JwksKeySource)
    with pytest.raises(ClerkAuthError) as caught:
        await source.warm_up()  # the source itself raises; the module-level warm_up logs
    assert caught.value.reason is ErrorReason.JWK_FAILED_TO_LOAD


async def test_wait_for_refresh_without_a_fetch_returns_at_once(serve: Any) -> None:
    seen = serve(key_set)
    source, _ = source_with_clock()
    await source.wait_for_refresh()
    assert seen == []


def test_a_loop_closed_in_the_middle_of_a_fetch_is_let_go(serve: Any) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Future()  # never answers; the loop is closed under it
        raise AssertionError("unreachable")  # pragma: no cover

    seen = serve(never)
    source, _ = source_with_clock()
    loop = asyncio.new_event_loop()
    abandoned = loop.create_task(source.get_key("ins_unit"))
    while not seen:  # run the loop until the fetch is under way, then walk away from it
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    gone = weakref.ref(loop)
    del loop, abandoned

    serve(key_set)
    assert asyncio.run(source.get_key("ins_unit")) is not None
    gc.collect()
    assert gone() is None
    assert source.fetch_count == 2


# -- the shared HTTP client ----------------------------------------------------------------


async def test_one_client_per_loop_recreated_after_close() -> None:
    client = shared_client()
    assert shared_client() is client
    assert client.headers["user-agent"] == "clerk-deps"
    await close_shared_client()
    assert client.is_closed
    replacement = shared_client()
    assert replacement is not client
    await close_shared_client()
    await close_shared_client()  # nothing left to close: no error


async def test_rotated_out_kids_are_named_as_such_and_remembered_boundedly(serve: Any) -> None:
    """A kid a refresh dropped gets the "fetch a fresh token" message; a kid that comes back
    is no longer "rotated out"; only the last 16 rotated-out kids are remembered."""
    published = {"kids": ["ins_0"]}

    async def rotating(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [rsa_jwk(kid=k) for k in published["kids"]]})

    serve(rotating)
    source, clock = source_with_clock(jwks_refresh_cooldown=1)

    async def message_for(kid: str) -> str:
        with pytest.raises(ClerkAuthError) as caught:
            await source.get_key(kid)
        assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
        return caught.value.message

    await source.warm_up()
    for n in range(1, 20):  # 19 rotations: ins_0 ... ins_18 rotated out
        published["kids"] = [f"ins_{n}"]
        clock.now += 1_000
        await source.get_key(f"ins_{n}")
    assert "fetch a fresh session token" in await message_for("ins_18")
    assert "has been removed" in await message_for("ins_3")  # among the last 16
    assert "has been removed" not in await message_for("ins_2")  # forgotten: generic text
    assert "another Clerk instance" in await message_for("ins_never_seen")

    published["kids"] = ["ins_19", "ins_5"]  # ins_5 is published again
    clock.now += 1_000
    await source.get_key("ins_5")
    published["kids"] = ["ins_19"]
    clock.now += 1_000
    await source.get_key("ins_19")
    assert "has been removed" in await message_for("ins_5")  # dropped again: rotated out
