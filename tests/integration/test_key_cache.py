"""The signing-key cache against a real key server on 127.0.0.1 (issue 3).

Every scenario counts what reached the key server. Time is a fake monotonic clock set on the
key source, never slept on; the few real waits are the hangs the scenario is about. blockbuster
is active for every test here, so a blocking call on any event loop (the test's, the app's
under uvicorn, the key server's) fails the test.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
import uuid
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from blockbuster import BlockingError, blockbuster_ctx
from fastapi import FastAPI

from clerk_deps import (
    ClerkAuthError,
    ClerkSettings,
    CurrentUserDep,
    ErrorReason,
    clerk_lifespan,
    get_settings,
    verify_token,
    warm_up,
)
from clerk_deps._http import close_shared_client, shared_client
from clerk_deps.keys import MAX_KEY_SET_BYTES, JwksKeySource, key_source_for
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.issuer import shared_private_key

from .keyserver import (
    BACKEND_JWKS_PATH,
    BOMB_EXPANDED_BYTES,
    KeyServer,
    ServerThread,
    gzip_bomb,
)

ISSUER = TestIssuer(kid="ins_current")
ROTATED = TestIssuer(kid="ins_rotated", private_key=shared_private_key(41))
TTL = 300.0
COOLDOWN = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_blocking_calls() -> Iterator[None]:
    with blockbuster_ctx() as guard:
        # Building ClerkSettings looks for .env files (pydantic-settings does so even when a
        # subclass drops the dotenv source, as TestIssuer.settings does). These tests build
        # settings on the loop; an app builds them once, in the threadpool (get_settings is
        # a cached sync dependency). Only that lookup is allowed, nothing else.
        for name in ("os.stat", "io.BufferedReader.read", "io.TextIOWrapper.read"):
            guard.functions[name].can_block_in(
                "pydantic_settings/sources/providers/dotenv.py", "_read_env_files"
            )
        yield


@pytest.fixture(scope="module")
def _key_server_process() -> Iterator[KeyServer]:
    server = KeyServer(ISSUER)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_server(_key_server_process: KeyServer) -> Iterator[KeyServer]:
    server = _key_server_process
    server.reset(ISSUER)
    server.start()  # a test may have left it stopped
    yield server
    server.release()


@pytest.fixture
def in_empty_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run in a directory without .env files (get_settings reads them)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
async def _close_http_client() -> AsyncIterator[None]:
    yield
    await close_shared_client()


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jwks_settings(server: KeyServer, **overrides: Any) -> ClerkSettings:
    values: dict[str, Any] = {
        "jwt_key": None,
        "jwks_url": server.jwks_url,
        "jwks_cache_ttl": TTL,
        "jwks_refresh_cooldown": COOLDOWN,
    }
    values.update(overrides)
    return ISSUER.settings(**values)


def cache_of(settings: ClerkSettings, clock: FakeClock | None = None) -> JwksKeySource:
    source = key_source_for(settings)
    assert isinstance(source, JwksKeySource)
    if clock is not None:
        source.clock = clock
    return source


def make_app(settings: ClerkSettings) -> FastAPI:
    app = FastAPI(lifespan=clerk_lifespan)
    app.dependency_overrides[get_settings] = lambda: settings

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"ok": True}

    return app


@asynccontextmanager
async def _close_client_on_shutdown(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_shared_client()


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason_of(response: httpx.Response) -> str:
    reason: str = response.json()["detail"]["reason"]
    return reason


def random_kid_token() -> str:
    return ISSUER.token(headers={"kid": f"ins_{uuid.uuid4().hex}"})


# -- the guard itself ------------------------------------------------------------------


async def test_blockbuster_fails_a_blocking_call_on_the_event_loop() -> None:
    with pytest.raises(BlockingError):
        time.sleep(0.001)  # noqa: ASYNC251 - the blocking call this guard must catch


# -- single flight ----------------------------------------------------------------------


async def test_50_concurrent_first_verifications_cause_one_fetch(key_server: KeyServer) -> None:
    settings = jwks_settings(key_server)
    key_server.mode = "hold"  # keep the first fetch open so all 50 arrive while it runs
    tokens = [ISSUER.token(f"user_{i}") for i in range(50)]
    tasks = [asyncio.create_task(verify_token(token, settings)) for token in tokens]
    await key_server.wait_until_holding()
    assert key_server.count == 1
    assert not any(task.done() for task in tasks)
    key_server.release()
    claims = await asyncio.gather(*tasks)
    assert [c.sub for c in claims] == [f"user_{i}" for i in range(50)]
    assert key_server.count == 1
    assert cache_of(settings).fetch_count == 1


async def test_50_concurrent_first_requests_cause_one_fetch(key_server: KeyServer) -> None:
    settings = jwks_settings(key_server)
    key_server.mode = "hold"
    async with client_for(make_app(settings)) as client:
        requests = [
            asyncio.create_task(client.get("/me", headers=bearer(ISSUER.token(f"user_{i}"))))
            for i in range(50)
        ]
        await key_server.wait_until_holding()
        key_server.release()
        responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [200] * 50
    assert [r.json()["sub"] for r in responses] == [f"user_{i}" for i in range(50)]
    assert key_server.count == 1


# -- TTL ----------------------------------------------------------------------------------


async def test_requests_inside_the_ttl_cause_no_fetch_and_one_after_it(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    async with client_for(make_app(settings)) as client:
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert key_server.count == 1
        version = source.version

        for _ in range(10):
            clock.advance(TTL / 11)  # still inside the TTL after ten steps
            assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert key_server.count == 1

        clock.advance(TTL / 11 + 1)  # now past it
        responses = await asyncio.gather(
            *(client.get("/me", headers=bearer(ISSUER.token())) for _ in range(20))
        )
        assert {r.status_code for r in responses} == {200}
        assert key_server.count == 2

        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert key_server.count == 2
    assert source.version == version  # the same keys came back: cached tokens stay valid


# -- unknown kids and rotation --------------------------------------------------------------


async def test_random_kid_flood_costs_at_most_one_fetch_per_cooldown(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    cache_of(settings, clock)
    async with client_for(make_app(settings)) as client:

        async def burst() -> list[httpx.Response]:
            return await asyncio.gather(
                *(client.get("/me", headers=bearer(random_kid_token())) for _ in range(100))
            )

        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert key_server.count == 1

        clock.advance(1)  # inside the cooldown of the first fetch
        responses = await burst()
        assert {(r.status_code, reason_of(r)) for r in responses} == {(401, "jwk-kid-mismatch")}
        assert {r.headers["www-authenticate"] for r in responses} == {
            'Bearer error="invalid_token"'
        }
        assert key_server.count == 1

        clock.advance(COOLDOWN)  # the cooldown allows one refetch, shared by the burst
        responses = await burst()
        assert {(r.status_code, reason_of(r)) for r in responses} == {(401, "jwk-kid-mismatch")}
        assert key_server.count == 2

        clock.advance(COOLDOWN / 2)
        responses = await burst()
        assert {r.status_code for r in responses} == {401}
        assert key_server.count == 2

        # known keys kept working throughout
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert key_server.count == 2


async def test_a_rotated_key_is_accepted_after_one_fetch_once_the_cooldown_allows(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    await warm_up(settings)
    assert key_server.count == 1
    version = source.version

    key_server.serve(ROTATED)  # Clerk rotates: only the new key is published
    clock.advance(COOLDOWN / 2)
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(ROTATED.token(), settings)
    assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
    assert key_server.count == 1  # the cooldown holds

    clock.advance(COOLDOWN / 2)
    claims = await verify_token(ROTATED.token("user_rotated"), settings)
    assert claims.sub == "user_rotated"
    assert key_server.count == 2
    assert source.version != version
    assert source.kids() == ["ins_rotated"]

    # The key Clerk stopped publishing is revoked, and asking for it costs no fetch.
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(ISSUER.token(), settings)
    assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
    assert key_server.count == 2


# -- cached verifications last only while their key is trusted ----------------------------


async def test_a_cache_hit_is_refused_once_a_refresh_drops_its_key(key_server: KeyServer) -> None:
    """Every request presents the same (cached) token: the hits themselves must let the key
    set be refreshed, and once Clerk stops publishing the key, the token fails as a fresh
    verification would, telling the client to fetch a fresh token."""
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    token = ISSUER.token("user_old_key", exp=int(time.time()) + 3600)
    assert (await verify_token(token, settings)).sub == "user_old_key"
    assert key_server.count == 1

    key_server.serve(ROTATED)  # Clerk rotates: the key that signed `token` is gone
    clock.advance(TTL / 2)
    assert (await verify_token(token, settings)).sub == "user_old_key"  # keys still fresh
    assert key_server.count == 1

    clock.advance(TTL / 2)  # the key set is due for a refresh: the next hit triggers it
    for _ in range(3):
        with pytest.raises(ClerkAuthError) as caught:
            await verify_token(token, settings)
        assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
        assert "fetch a fresh session token" in caught.value.message
        assert "rotated" in caught.value.message
    assert key_server.count == 2  # one refresh; the refusals after it cost no fetch
    assert source.kids() == ["ins_rotated"]
    assert (await verify_token(ROTATED.token("user_new_key"), settings)).sub == "user_new_key"


async def test_a_refresh_by_another_request_ends_the_hits_of_a_dropped_key(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    cache_of(settings, clock)
    old = ISSUER.token("user_old_key", exp=int(time.time()) + 3600)
    await verify_token(old, settings)
    key_server.serve(ROTATED)
    clock.advance(COOLDOWN)
    # a token of the new key refreshes the set (unknown kid, cooldown over)
    assert (await verify_token(ROTATED.token("user_new"), settings)).sub == "user_new"
    assert key_server.count == 2
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(old, settings)
    assert caught.value.reason is ErrorReason.JWK_KID_MISMATCH
    assert "fetch a fresh session token" in caught.value.message


async def test_cache_hits_keep_serving_when_the_refresh_returns_the_same_keys(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    token = ISSUER.token("user_kept", exp=int(time.time()) + 3600)
    first = await verify_token(token, settings)
    version = source.version
    clock.advance(TTL + 1)
    second = await verify_token(token, settings)  # verified afresh, refreshing the keys
    assert second == first and second is not first
    assert key_server.count == 2 and source.version == version
    for _ in range(3):
        assert await verify_token(token, settings) is second  # hits again
    assert key_server.count == 2


async def test_cache_hits_keep_serving_while_the_key_server_is_down(
    key_server: KeyServer,
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    token = ISSUER.token("user_outage", exp=int(time.time()) + 3600)
    first = await verify_token(token, settings)
    await key_server.astop()
    clock.advance(TTL + 1)
    assert (await verify_token(token, settings)).sub == "user_outage"  # waits one failed fetch
    assert source.fetch_count == 2
    for _ in range(5):  # then hits, and one background retry per cooldown
        assert await verify_token(token, settings) is not None
    clock.advance(COOLDOWN)
    assert (await verify_token(token, settings)).sub == first.sub
    await source.wait_for_refresh()
    assert source.fetch_count == 3


# -- header checks come before the key lookup ---------------------------------------------

WRONG_KIND = [
    pytest.param({"cat": "cl_B7d4PD333AAA"}, "token-type-mismatch", id="machine category"),
    pytest.param({"cat": "cl_B7d4PD222AAA"}, "token-type-mismatch", id="template category"),
    pytest.param({"typ": "at+jwt"}, "token-type-mismatch", id="typ at+jwt"),
    pytest.param({"typ": "application/at+jwt"}, "token-type-mismatch", id="typ application"),
    pytest.param({"typ": "JOSE"}, "token-invalid", id="typ other"),
    pytest.param({"crit": ["b64"]}, "token-invalid", id="crit"),
    pytest.param({"alg": "HS256"}, "token-invalid-algorithm", id="alg"),
]


@pytest.mark.parametrize(("header", "reason"), WRONG_KIND)
async def test_a_token_of_the_wrong_kind_costs_no_key_fetch(
    key_server: KeyServer, header: dict[str, Any], reason: str
) -> None:
    settings = jwks_settings(key_server)
    async with client_for(make_app(settings)) as client:
        for kid in (ISSUER.kid, "ins_unknown"):  # a cold cache, and an unknown kid
            token = ISSUER.token(headers={**header, "kid": kid})
            response = await client.get("/me", headers=bearer(token))
            assert (response.status_code, reason_of(response)) == (401, reason)
    assert key_server.count == 0


@pytest.mark.parametrize(("header", "reason"), WRONG_KIND)
async def test_a_token_of_the_wrong_kind_is_refused_while_the_key_server_is_down(
    key_server: KeyServer, header: dict[str, Any], reason: str
) -> None:
    settings = jwks_settings(key_server)
    await key_server.astop()
    async with client_for(make_app(settings)) as client:
        response = await client.get("/me", headers=bearer(ISSUER.token(headers=header)))
        assert (response.status_code, reason_of(response)) == (401, reason)
        # a session token does need the keys: with none loadable it is 503, as before
        response = await client.get("/me", headers=bearer(ISSUER.token()))
        assert (response.status_code, reason_of(response)) == (503, "jwk-failed-to-load")


async def test_a_forged_template_token_learns_nothing_about_its_claims(
    key_server: KeyServer,
) -> None:
    """Claim checks stay after the signature: a forged session-kind token with a machine
    subject and no sid is told only that its signature fails."""
    settings = jwks_settings(key_server)
    forged = ISSUER.forged_token("mch_forged", sid=None, exp=int(time.time()) - 3600)
    async with client_for(make_app(settings)) as client:
        response = await client.get("/me", headers=bearer(forged))
    assert (response.status_code, reason_of(response)) == (401, "token-invalid-signature")


# -- outages ---------------------------------------------------------------------------------


async def test_key_server_down_after_warm_up_keeps_serving_cached_keys(
    key_server: KeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    app = make_app(settings)
    async with clerk_lifespan(app), client_for(app) as client:
        assert key_server.count == 1
        await key_server.astop()
        clock.advance(TTL + 1)

        caplog.set_level(logging.WARNING, logger="clerk_deps")
        responses = [await client.get("/me", headers=bearer(ISSUER.token())) for _ in range(20)]
        assert {r.status_code for r in responses} == {200}
        assert source.fetch_count == 2  # one failed attempt, then the cooldown
        warnings = [r.getMessage() for r in caplog.records if r.name == "clerk_deps"]
        assert len(warnings) == 1
        assert "unreachable (ConnectError)" in warnings[0]
        assert "keeping 1 cached key(s)" in warnings[0]

        clock.advance(COOLDOWN)  # the retry now runs in the background
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        await source.wait_for_refresh()
        assert source.fetch_count == 3

        await key_server.astart()  # Clerk is back
        clock.advance(COOLDOWN)
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        await source.wait_for_refresh()
        assert source.fetch_count == 4
        assert key_server.count == 2  # warm-up, then the first attempt since it came back

        clock.advance(TTL / 2)  # fresh again: no fetch, no waiting
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
        assert source.fetch_count == 4


async def test_a_hanging_key_server_never_delays_requests_whose_key_is_cached(
    key_server: KeyServer,
) -> None:
    # A long http_timeout: a request that waited for the refresh would hang past fail_after.
    settings = jwks_settings(key_server, http_timeout=60)
    clock = FakeClock()
    source = cache_of(settings, clock)
    await warm_up(settings)
    key_server.mode = "error"
    clock.advance(TTL + 1)
    # The first refresh after the TTL is waited for; it fails fast, the cached key answers.
    await verify_token(ISSUER.token(), settings)
    assert key_server.count == 2

    key_server.mode = "hold"  # now Clerk hangs instead
    clock.advance(COOLDOWN)
    async with client_for(make_app(settings)) as client:
        first = asyncio.create_task(client.get("/me", headers=bearer(ISSUER.token())))
        await key_server.wait_until_holding()
        with anyio.fail_after(5):
            # Ordering: these answers arrive while the key server still holds the refresh.
            responses = [await first]
            responses += [
                await client.get("/me", headers=bearer(ISSUER.token())) for _ in range(10)
            ]
        assert key_server.holding.is_set()
        assert [r.status_code for r in responses] == [200] * 11
        assert key_server.count == 3  # one background refresh, not one per request

        key_server.release()
        await source.wait_for_refresh()
    clock.advance(1)
    await verify_token(ISSUER.token(), settings)
    assert key_server.count == 3  # the released refresh succeeded: the cache is fresh


COLD_FAILURES = [
    ("stopped", "unreachable (ConnectError)"),
    ("error", "answered HTTP 500"),
    ("drop", "unreachable (RemoteProtocolError)"),
    ("redirect", "answered HTTP 302"),
    ("not-json", "did not answer JSON"),
    ("deep-json", "did not answer JSON"),
    ("no-keys", "holds no usable RS256 signing key"),
    ("empty-keys", "holds no usable RS256 signing key"),
    ("no-kid", "holds no usable RS256 signing key"),
    ("huge", "sent more than 256 KiB"),
    ("gzip-bomb", "sent more than 256 KiB"),
    ("brotli", "unsupported encoding 'br'"),
    ("gzip-corrupt", "sent a corrupt gzip body"),
]


@pytest.mark.parametrize(("failure", "cause"), COLD_FAILURES, ids=[f for f, _ in COLD_FAILURES])
async def test_cold_start_without_keys_is_503_and_recovers_by_itself(
    key_server: KeyServer, caplog: pytest.LogCaptureFixture, failure: str, cause: str
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    if failure == "stopped":
        await key_server.astop()
    else:
        key_server.mode = failure
    reached = 0 if failure == "stopped" else 1
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    async with client_for(make_app(settings)) as client:
        response = await client.get("/me", headers=bearer(ISSUER.token()))
        assert response.status_code == 503
        assert reason_of(response) == "jwk-failed-to-load"
        assert response.headers["retry-after"] == "10"
        logged = [r.getMessage() for r in caplog.records if r.name == "clerk_deps"]
        assert len(logged) == 1
        assert cause in logged[0]

        clock.advance(3)
        response = await client.get("/me", headers=bearer(ISSUER.token()))
        assert (response.status_code, response.headers["retry-after"]) == (503, "7")
        assert (source.fetch_count, key_server.count) == (1, reached)

        if failure == "stopped":
            await key_server.astart()
        key_server.mode = "ok"
        clock.advance(4)  # back, but the cooldown is not over: no fetch yet
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 503
        assert source.fetch_count == 1

        clock.advance(3)
        response = await client.get("/me", headers=bearer(ISSUER.token()))
        assert response.status_code == 200
        assert (source.fetch_count, key_server.count) == (2, reached + 1)


async def test_a_gzip_bomb_is_never_expanded_past_the_size_cap(key_server: KeyServer) -> None:
    """~130 KiB of gzip that expands to 128 MiB: decompression stops at the cap, so the
    fetch allocates a few hundred KiB, not the expanded body."""
    settings = jwks_settings(key_server)
    key_server.mode = "gzip-bomb"
    assert len(gzip_bomb()) < MAX_KEY_SET_BYTES < BOMB_EXPANDED_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(ClerkAuthError) as caught:
            await verify_token(ISSUER.token(), settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason is ErrorReason.JWK_FAILED_TO_LOAD
    assert key_server.count == 1
    assert peak < 8 * MAX_KEY_SET_BYTES, f"peak {peak / 2**20:.1f} MiB"
    assert key_server.hits[0].accept_encoding == "identity"


async def test_a_gzip_key_set_is_read(key_server: KeyServer) -> None:
    """A server that compresses although asked not to still works (bounded decoding)."""
    key_server.mode = "gzip"
    claims = await verify_token(ISSUER.token("user_gzip"), jwks_settings(key_server))
    assert claims.sub == "user_gzip"


@pytest.mark.parametrize("behaviour", ["hold", "drip"])
async def test_the_whole_fetch_is_bounded_by_http_timeout(
    key_server: KeyServer, caplog: pytest.LogCaptureFixture, behaviour: str
) -> None:
    # "hold" never answers; "drip" answers a byte every 50 ms, so each read is quick and only
    # a deadline on the whole fetch ends it. Without one, the single flight and every waiter
    # would hang forever. The timeout leaves a loaded machine ample time to get the request
    # to the server (a held request is counted on arrival); the fetch must end at the
    # timeout, not before it (another failure) and not long after it (no deadline).
    timeout = 1.0
    settings = jwks_settings(key_server, http_timeout=timeout)
    key_server.mode = behaviour
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    started = time.monotonic()
    with anyio.fail_after(timeout * 10):
        with pytest.raises(ClerkAuthError) as caught:
            await verify_token(ISSUER.token(), settings)
    elapsed = time.monotonic() - started
    assert caught.value.reason is ErrorReason.JWK_FAILED_TO_LOAD
    assert elapsed >= timeout * 0.99, f"ended after {elapsed:.2f} s, before the timeout"
    assert key_server.count == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "clerk_deps"]
    assert any(f"within {timeout:g} s" in message for message in logged), logged


# -- the event loop stays free ---------------------------------------------------------------


@pytest.mark.parametrize("serving", ["asgi-same-loop", "uvicorn"])
async def test_a_hung_key_fetch_does_not_stop_other_routes(
    key_server: KeyServer, serving: str
) -> None:
    settings = jwks_settings(key_server)
    key_server.mode = "hold"
    app = make_app(settings)
    app_server: ServerThread | None = None
    if serving == "uvicorn":
        # no warm-up here: the fetch during a request is the point
        app.router.lifespan_context = _close_client_on_shutdown
        app_server = ServerThread(app, lifespan="on")
        await app_server.astart()
        client = httpx.AsyncClient(base_url=app_server.url)
    else:
        client = client_for(app)
    try:
        protected = [
            asyncio.create_task(client.get("/me", headers=bearer(ISSUER.token()))) for _ in range(3)
        ]
        await key_server.wait_until_holding()

        public = await client.get("/public")

        # Ordering: the public answer arrived while the key fetch was still held open.
        assert public.status_code == 200
        assert key_server.holding.is_set()
        assert not any(task.done() for task in protected)
        key_server.release()
        assert [r.status_code for r in await asyncio.gather(*protected)] == [200] * 3
        assert key_server.count == 1
    finally:
        await client.aclose()
        if app_server is not None:
            key_server.release()
            await app_server.astop()


# -- the Backend API key set ------------------------------------------------------------


def backend_settings(server: KeyServer, secret: str) -> ClerkSettings:
    return ISSUER.settings(
        jwt_key=None, issuer=None, secret_key=secret, api_url=server.url, jwks_cache_ttl=TTL
    )


async def test_two_secret_keys_never_share_cached_keys(key_server: KeyServer) -> None:
    # Both instances use the same kid with different keys: a shared cache would verify one
    # instance's tokens with the other's key.
    alpha = TestIssuer(kid="ins_same", private_key=shared_private_key(42))
    beta = TestIssuer(kid="ins_same", private_key=shared_private_key(43))
    key_server.key_sets_by_secret = {"sk_test_alpha": alpha.jwks(), "sk_test_beta": beta.jwks()}
    settings_a = backend_settings(key_server, "sk_test_alpha")
    settings_b = backend_settings(key_server, "sk_test_beta")

    assert (await verify_token(alpha.token("user_a"), settings_a)).sub == "user_a"
    assert (await verify_token(beta.token("user_b"), settings_b)).sub == "user_b"
    for token, settings in ((alpha.token(), settings_b), (beta.token(), settings_a)):
        with pytest.raises(ClerkAuthError) as caught:
            await verify_token(token, settings)
        assert caught.value.reason is ErrorReason.TOKEN_INVALID_SIGNATURE

    assert key_source_for(settings_a) is not key_source_for(settings_b)
    assert key_source_for(backend_settings(key_server, "sk_test_alpha")) is key_source_for(
        settings_a
    )
    assert sorted((hit.path, hit.authorization) for hit in key_server.hits) == [
        (BACKEND_JWKS_PATH, "Bearer sk_test_alpha"),
        (BACKEND_JWKS_PATH, "Bearer sk_test_beta"),
    ]


async def test_the_secret_key_never_reaches_logs_or_responses(
    key_server: KeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_test_DoNotLogThisSecret"
    settings = backend_settings(key_server, secret)  # the key server does not know it: 401
    caplog.set_level(logging.DEBUG)
    async with client_for(make_app(settings)) as client:
        refused = await client.get("/me", headers=bearer(ISSUER.token()))
        await key_server.astop()
        cache_of(settings).clock = lambda: time.monotonic() + COOLDOWN
        unreachable = await client.get("/me", headers=bearer(ISSUER.token()))
    assert (refused.status_code, unreachable.status_code) == (503, 503)
    assert key_server.hits[0].authorization == f"Bearer {secret}"  # it was used...
    logged = [r for r in caplog.records if r.name == "clerk_deps"]
    assert len(logged) == 2
    assert "answered HTTP 401" in logged[0].getMessage()
    assert "unreachable" in logged[1].getMessage()
    everything = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    for text in (everything, refused.text, unreachable.text, repr(key_source_for(settings))):
        assert "DoNotLogThisSecret" not in text  # ...and never shown


# -- warm-up and the lifespan ----------------------------------------------------------------


async def test_lifespan_stops_start_up_on_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, in_empty_dir: None
) -> None:
    monkeypatch.setenv("CLERK_JWKS_URL", "http://clerk.example.com/jwks")
    with pytest.raises(ClerkAuthError) as caught:
        async with clerk_lifespan(FastAPI()):
            pytest.fail("start-up went on with invalid settings")  # pragma: no cover
    assert caught.value.reason is ErrorReason.AUTH_NOT_CONFIGURED
    assert "CLERK_JWKS_URL" in caught.value.message


async def test_lifespan_without_any_key_source_logs_one_line_and_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing configured is not a wrong value: the app starts (tests may override the user
    # later), says once what to set, and protected routes answer 500 auth-not-configured.
    unconfigured = FastAPI()
    unconfigured.dependency_overrides[get_settings] = lambda: ISSUER.settings(
        jwt_key=None, issuer=None
    )
    caplog.set_level(logging.ERROR, logger="clerk_deps")
    async with clerk_lifespan(unconfigured):
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "CLERK_ISSUER" in lines[0] and "CLERK_JWT_KEY" in lines[0]


async def test_lifespan_with_an_unreachable_key_server_only_warns(
    key_server: KeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = jwks_settings(key_server)
    clock = FakeClock()
    source = cache_of(settings, clock)
    await key_server.astop()
    app = make_app(settings)
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    async with clerk_lifespan(app), client_for(app) as client:
        assert any("warm-up could not load" in r.getMessage() for r in caplog.records)
        assert (await client.get("/public")).status_code == 200
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 503
        await key_server.astart()
        clock.advance(COOLDOWN)
        assert (await client.get("/me", headers=bearer(ISSUER.token()))).status_code == 200
    assert source.fetch_count == 2


async def test_after_warm_up_the_first_request_makes_no_fetch(key_server: KeyServer) -> None:
    settings = jwks_settings(key_server)
    app = make_app(settings)
    async with clerk_lifespan(app):
        assert key_server.count == 1
        async with client_for(app) as client:
            response = await client.get("/me", headers=bearer(ISSUER.token()))
        assert response.status_code == 200
        assert key_server.count == 1


async def test_warm_up_reads_the_process_settings_by_default(
    key_server: KeyServer, monkeypatch: pytest.MonkeyPatch, in_empty_dir: None
) -> None:
    monkeypatch.setenv("CLERK_JWKS_URL", key_server.jwks_url)
    await warm_up()
    assert key_server.count == 1
    assert cache_of(get_settings()).kids() == ["ins_current"]


# -- event loops come and go ----------------------------------------------------------------


async def test_a_closed_event_loop_is_not_kept_alive(key_server: KeyServer) -> None:
    # A worker thread that calls asyncio.run per job must not keep every finished loop, with
    # its HTTP client and sockets, for the life of the process.
    # every job fetches: no key-set TTL, no remembered verifications
    settings = jwks_settings(key_server, jwks_cache_ttl=0, token_cache_size=0)
    token = ISSUER.token()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def job() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return (await verify_token(token, settings)).sub

    async def next_loop_takes_a_client() -> None:
        shared_client()
        await close_shared_client()

    def worker() -> tuple[list[str], list[bool], list[bool]]:
        subs = [asyncio.run(job()) for _ in range(4)]
        with warnings.catch_warnings():
            # the sockets of dropped clients are closed as they are collected, which warns
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
            alive_after_jobs = [ref() is not None for ref in loops]
            asyncio.run(next_loop_takes_a_client())
            gc.collect()
        return subs, alive_after_jobs, [ref() is not None for ref in loops]

    subs, alive_after_jobs, alive_at_end = await asyncio.to_thread(worker)
    assert subs == ["user_test"] * 4
    assert key_server.count == 4
    # Only the last loop's client is still held, until another loop needs one.
    assert alive_after_jobs == [False, False, False, True]
    assert alive_at_end == [False] * 4
