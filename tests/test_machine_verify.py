"""Opaque machine tokens against FakeClerk on 127.0.0.1: Clerk's answers mapped to reasons,
and the calls counted at the emulator (cache, single flight, budget)."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from clerk_deps import ClerkAuthError, MachineAuth, TokenType, authenticate
from clerk_deps.budget import CallBudget
from clerk_deps.machine_cache import (
    Verdict,
    VerdictCache,
    use_shared_verdicts,
)
from clerk_deps.machine_verify import clear_verifiers, verifier_for
from clerk_deps.settings import ClerkSettings
from clerk_deps.testing import FakeClerk
from clerk_deps.testing.server import serve_app

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("fresh_machine_state")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def served() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def fake(served: FakeClerk) -> FakeClerk:
    return served


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def refused(token: str, settings: ClerkSettings, **options: Any) -> ClerkAuthError:
    with pytest.raises(ClerkAuthError) as caught:
        await authenticate(token, settings, accepts="any", **options)
    return caught.value


# -- each kind, each answer ------------------------------------------------------------------


async def test_api_keys_of_users_and_organizations(fake: FakeClerk) -> None:
    user_key = fake.create_api_key("user_1", name="ci", scopes=["read"], claims={"env": "ci"})
    org_key = fake.create_api_key("org_1", name="partner", scopes=["read", "write"])
    user = await authenticate(user_key["secret"], fake.settings(), accepts="api_key")
    org = await authenticate(org_key["secret"], fake.settings(), accepts=["api_key"])
    assert isinstance(user, MachineAuth) and isinstance(org, MachineAuth)
    assert (user.token_type, user.id, user.subject, user.name) == (
        TokenType.API_KEY,
        user_key["id"],
        "user_1",
        "ci",
    )
    assert user.user_id == "user_1" and user.claims == {"env": "ci"} and user.scopes == ["read"]
    assert org.org_id == "org_1" and org.scopes == ["read", "write"] and org.claims is None
    assert user.id != user_key["secret"]  # the id, never the secret


async def test_opaque_m2m_token_uses_the_machine_secret_key(fake: FakeClerk) -> None:
    created = fake.create_m2m_token(scopes=["mch_other"], claims={"job": "sync"})
    # The instance secret key is wrong: only the machine secret key can verify.
    settings = fake.settings(secret_key="sk_test_wrong", machine_secret_key=fake.machine_secret_key)
    auth = await authenticate(created["token"], settings, accepts="m2m_token")
    assert isinstance(auth, MachineAuth)
    assert auth.subject == fake.machine_id and auth.scopes == ["mch_other"]
    assert auth.claims == {"job": "sync"} and auth.id == created["id"]
    # Without CLERK_MACHINE_SECRET_KEY, the instance key verifies M2M tokens too.
    auth = await authenticate(fake.create_m2m_token()["token"], fake.settings(), accepts="any")
    assert isinstance(auth, MachineAuth) and auth.token_type is TokenType.M2M_TOKEN


async def test_machine_secret_key_alone_configures_m2m_but_not_api_keys(fake: FakeClerk) -> None:
    settings = fake.settings(secret_key=None, machine_secret_key=fake.machine_secret_key)
    auth = await authenticate(fake.create_m2m_token()["token"], settings, accepts="any")
    assert isinstance(auth, MachineAuth)
    error = await refused(fake.create_api_key()["secret"], settings)
    assert (error.status_code, error.reason.value) == (500, "auth-not-configured")


async def test_opaque_oauth_token(fake: FakeClerk) -> None:
    created = fake.create_oauth_token("user_5", client_id="app_1", scopes=["email"])
    auth = await authenticate(created["token"], fake.settings(), accepts="oauth_token")
    assert isinstance(auth, MachineAuth)
    assert (auth.subject, auth.client_id, auth.scopes) == ("user_5", "app_1", ["email"])
    assert auth.expires_at is not None and auth.expires_at > time.time()


@pytest.mark.parametrize("answer", ["object", "not_found", "inactive"])
async def test_revoked_tokens(fake: FakeClerk, answer: Any) -> None:
    key = fake.create_api_key()
    fake.revoke_machine_token(key["id"], reason="leaked", answer=answer)
    error = await refused(key["secret"], fake.settings())
    expected = {
        "object": "token-revoked",
        "not_found": "token-invalid",
        "inactive": "token-invalid",
    }
    assert error.reason.value == expected[answer]
    assert error.status_code == 401
    assert key["secret"] not in error.message


@pytest.mark.parametrize("answer", ["object", "not_found"])
async def test_expired_tokens(fake: FakeClerk, answer: Any) -> None:
    token = fake.create_oauth_token()
    fake.expire_machine_token(token["token"], answer=answer)
    error = await refused(token["token"], fake.settings())
    assert error.reason.value == ("token-expired" if answer == "object" else "token-invalid")


async def test_unknown_tokens_are_invalid(fake: FakeClerk) -> None:
    for token in ("ak_" + "x" * 40, "mt_" + "y" * 40, "oat_" + "z" * 40):
        error = await refused(token, fake.settings())
        assert (error.status_code, error.reason.value) == (401, "token-invalid")


async def test_a_wrong_secret_key_is_a_configuration_error(fake: FakeClerk) -> None:
    key = fake.create_api_key()
    error = await refused(key["secret"], fake.settings(secret_key="sk_test_wrong"))
    assert (error.status_code, error.reason.value) == (500, "auth-not-configured")
    assert "CLERK_SECRET_KEY" in error.message and "sk_test_wrong" not in error.message
    m2m = fake.create_m2m_token()["token"]
    error = await refused(m2m, fake.settings(machine_secret_key="ak_wrong"))
    assert "CLERK_MACHINE_SECRET_KEY" in error.message


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, 7, "7"), (429, None, "10"), (502, None, "5"), (503, 3, "3")],
)
async def test_clerk_failures_are_503_with_retry_after(
    fake: FakeClerk, status: int, retry_after: int | None, expected: str
) -> None:
    key = fake.create_api_key()
    with fake.machine_verify_outage(status, retry_after=retry_after):
        error = await refused(key["secret"], fake.settings())
    assert error.status_code == 503
    assert error.reason.value == "machine-verification-unavailable"
    assert error.headers == {"Retry-After": expected}
    # Nothing was cached: once Clerk answers again (and, after a 429, once its Retry-After
    # has passed), the key verifies.
    clock = Clock()
    clock.now += 11
    auth = await authenticate(key["secret"], fake.settings(), accepts="any", clock=clock)
    assert isinstance(auth, MachineAuth)


async def test_after_a_429_no_call_is_made_until_retry_after(fake: FakeClerk) -> None:
    clock = Clock()
    key = fake.create_api_key()
    with fake.machine_verify_outage(429, retry_after=30):
        await refused(key["secret"], fake.settings(), clock=clock)
    before = fake.verify_calls()
    clock.now += 29
    error = await refused(key["secret"], fake.settings(), clock=clock)
    assert error.headers == {"Retry-After": "1"}
    assert fake.verify_calls() == before
    clock.now += 2
    assert isinstance(
        await authenticate(key["secret"], fake.settings(), accepts="any", clock=clock), MachineAuth
    )


async def test_unreachable_and_slow_backend_api_are_503() -> None:
    settings = ClerkSettings(
        issuer="https://x.example", api_url="http://127.0.0.1:9", secret_key="sk_test_x"
    )
    error = await refused("ak_" + "q" * 40, settings)
    assert (error.status_code, error.reason.value) == (503, "machine-verification-unavailable")

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5)

    with serve_app(slow) as url:
        settings = ClerkSettings(
            issuer="https://x.example", api_url=url, secret_key="sk_test_x", http_timeout=0.1
        )
        error = await refused("ak_" + "s" * 40, settings)
    assert error.status_code == 503 and "Retry-After" in (error.headers or {})


@pytest.mark.parametrize(
    "body",
    [{"object": "m2m"}, {"object": "api_key", "id": "ak_1"}, {"id": 5, "subject": "user_1"}],
)
async def test_a_garbled_answer_is_503_not_a_pass(body: dict[str, Any]) -> None:
    async def clerk(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    with serve_app(clerk) as url:
        settings = ClerkSettings(issuer="https://x.example", api_url=url, secret_key="sk_test_x")
        error = await refused("ak_" + "g" * 40, settings)
    assert (error.status_code, error.reason.value) == (503, "machine-verification-unavailable")


async def test_the_request_is_sent_as_clerks_sdks_send_it() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def clerk(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen.append((scope["path"], headers, message.get("body", b"")))
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b'{"errors": []}'})

    token = "oat_" + "h" * 40
    with serve_app(clerk) as url:
        settings = ClerkSettings(issuer="https://x.example", api_url=url, secret_key="sk_test_x")
        await refused(token, settings)
    path, headers, body = seen[0]
    assert path == "/oauth_applications/access_tokens/verify"
    assert headers["clerk-api-version"] == "2026-05-12"
    assert headers["authorization"] == "Bearer sk_test_x"
    assert json.loads(body) == {"access_token": token}


# -- the cache, counted at FakeClerk ---------------------------------------------------------


async def test_a_repeated_token_costs_one_call_per_cache_ttl(fake: FakeClerk) -> None:
    clock = Clock()
    settings = fake.settings(machine_cache_ttl=60)
    key = fake.create_api_key()
    before = fake.verify_calls()
    for _second in range(180):  # three minutes, ten requests a second
        for _ in range(10):
            await authenticate(key["secret"], settings, accepts="api_key", clock=clock)
        clock.now += 1
    assert fake.verify_calls() - before == 3


async def test_a_verdict_never_outlives_the_token(fake: FakeClerk) -> None:
    clock = Clock()
    fake.clock = clock
    try:
        key = fake.create_api_key(seconds_until_expiration=10)
    finally:
        fake.clock = time.time
    settings = fake.settings(machine_cache_ttl=3600)
    auth = await authenticate(key["secret"], settings, accepts="any", clock=clock)
    assert isinstance(auth, MachineAuth) and auth.expires_at is not None
    clock.now += 11
    error = await refused(key["secret"], settings, clock=clock)
    assert error.reason.value == "token-expired"


async def test_revocation_is_seen_after_the_cache_ttl(fake: FakeClerk) -> None:
    clock = Clock()
    settings = fake.settings(machine_cache_ttl=30)
    key = fake.create_api_key()
    await authenticate(key["secret"], settings, accepts="any", clock=clock)
    fake.revoke_machine_token(key["id"])
    clock.now += 29
    assert isinstance(
        await authenticate(key["secret"], settings, accepts="any", clock=clock), MachineAuth
    )
    clock.now += 2
    assert (await refused(key["secret"], settings, clock=clock)).reason.value == "token-revoked"
    calls = fake.verify_calls()
    clock.now += 20  # a revoked verdict is kept like a valid one
    assert (await refused(key["secret"], settings, clock=clock)).reason.value == "token-revoked"
    assert fake.verify_calls() == calls


async def test_unknown_tokens_are_remembered_briefly(fake: FakeClerk) -> None:
    clock = Clock()
    settings = fake.settings(machine_negative_cache_ttl=10)
    token = "ak_" + "n" * 40
    before = fake.verify_calls()
    for _ in range(50):
        await refused(token, settings, clock=clock)
    assert fake.verify_calls() - before == 1
    clock.now += 10
    await refused(token, settings, clock=clock)
    assert fake.verify_calls() - before == 2


async def test_cache_size_zero_still_single_flights(fake: FakeClerk) -> None:
    settings = fake.settings(machine_cache_size=0)
    key = fake.create_api_key()
    before = fake.verify_calls()
    await authenticate(key["secret"], settings, accepts="any")
    await authenticate(key["secret"], settings, accepts="any")
    assert fake.verify_calls() - before == 2


async def test_concurrent_first_requests_make_one_call(fake: FakeClerk) -> None:
    key = fake.create_api_key(scopes=["read"])
    before = fake.verify_calls()
    results = await asyncio.gather(
        *(authenticate(key["secret"], fake.settings(), accepts="api_key") for _ in range(100))
    )
    assert fake.verify_calls() - before == 1
    assert all(isinstance(r, MachineAuth) and r.id == key["id"] for r in results)
    assert len({id(r) for r in results}) == 1  # one verdict, shared


async def test_a_waiter_going_away_does_not_cancel_the_call(fake: FakeClerk) -> None:
    key = fake.create_api_key()
    first = asyncio.ensure_future(authenticate(key["secret"], fake.settings(), accepts="any"))
    second = asyncio.ensure_future(authenticate(key["secret"], fake.settings(), accepts="any"))
    await asyncio.sleep(0)
    first.cancel()
    assert isinstance(await second, MachineAuth)


# -- the budget ------------------------------------------------------------------------------


def random_key() -> str:
    return "ak_" + secrets.token_urlsafe(30)


async def test_a_flood_of_random_keys_stays_within_the_budget(fake: FakeClerk) -> None:
    settings = fake.settings(machine_verify_rate=5, machine_verify_burst=20)
    valid = fake.create_api_key()
    await authenticate(valid["secret"], settings, accepts="api_key")  # cached from here on
    before = fake.verify_calls()
    started = time.monotonic()
    outcomes: dict[str, int] = {}
    valid_ok = 0
    for batch in range(100):
        tokens = [random_key() for _ in range(100)]
        results = await asyncio.gather(
            *(authenticate(t, settings, accepts="api_key") for t in tokens),
            authenticate(valid["secret"], settings, accepts="api_key"),
            return_exceptions=True,
        )
        for result in results[:-1]:
            assert isinstance(result, ClerkAuthError), result
            outcomes[result.reason.value] = outcomes.get(result.reason.value, 0) + 1
        assert isinstance(results[-1], MachineAuth), f"batch {batch}: {results[-1]!r}"
        valid_ok += 1
    elapsed = time.monotonic() - started
    calls = fake.verify_calls() - before
    assert calls <= 20 + 5 * elapsed + 1, (calls, elapsed)
    assert outcomes.get("machine-verification-unavailable", 0) >= 10_000 - calls
    assert outcomes.get("token-invalid", 0) == calls
    assert valid_ok == 100


def test_call_budget_is_a_token_bucket() -> None:
    budget = CallBudget(rate=2, burst=3)
    assert [budget.take(100.0) for _ in range(3)] == [0, 0, 0]
    assert budget.take(100.0) == pytest.approx(0.5)
    assert budget.take(100.5) == 0
    assert budget.take(200.0) == 0  # refilled, but never above the burst
    assert [budget.take(200.0) for _ in range(3)] == [0, 0, pytest.approx(0.5)]
    budget.pause_until(300.0)
    assert budget.take(290.0) == pytest.approx(10.0)
    assert budget.take(300.0) == 0
    never_refilled = CallBudget(rate=0, burst=1)
    assert never_refilled.take(0.0) == 0
    assert never_refilled.take(1e9) == math.inf


async def test_over_budget_is_503_and_cached_tokens_keep_working(fake: FakeClerk) -> None:
    clock = Clock()
    settings = fake.settings(machine_verify_rate=1, machine_verify_burst=1)
    first, second = fake.create_api_key(), fake.create_api_key()
    assert isinstance(
        await authenticate(first["secret"], settings, accepts="any", clock=clock), MachineAuth
    )
    error = await refused(second["secret"], settings, clock=clock)
    assert (error.status_code, error.reason.value) == (503, "machine-verification-unavailable")
    assert error.headers == {"Retry-After": "1"}
    assert "CLERK_MACHINE_VERIFY_RATE" in error.message
    assert isinstance(
        await authenticate(first["secret"], settings, accepts="any", clock=clock), MachineAuth
    )
    clock.now += 1
    assert isinstance(
        await authenticate(second["secret"], settings, accepts="any", clock=clock), MachineAuth
    )


# -- pieces ------------------------------------------------------------------------------------


def test_verdict_cache_is_bounded_and_expires() -> None:
    cache = VerdictCache(max_size=2)
    no = Verdict(None)
    cache.put("a", no, until=10, now=0)
    cache.put("b", no, until=10, now=0)
    cache.put("c", no, until=10, now=0)
    assert cache.get("a", 1) is None and cache.get("c", 1) is no
    assert cache.get("c", 10) is None and len(cache) == 1
    cache.put("d", no, until=5, now=5)  # already due: not stored
    assert cache.get("d", 5) is None
    cache.clear()
    assert len(cache) == 0


def test_verdicts_round_trip_through_text() -> None:
    auth = MachineAuth(
        token_type=TokenType.API_KEY, id="ak_1", subject="org_1", scopes=["a"], claims={"x": [1]}
    )
    assert Verdict.from_text(Verdict(auth).to_text()) == Verdict(auth)
    from clerk_deps.errors import ErrorReason

    revoked = Verdict(None, ErrorReason.TOKEN_REVOKED, "this API key has been revoked")
    assert Verdict.from_text(revoked.to_text()) == revoked
    assert Verdict.from_text("not json") is None
    assert Verdict.from_text('{"reason": "nope", "message": ""}') is None


class SharedDict:
    """A real in-memory store with the shared-store interface (what Redis provides)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        found = self.values.get(key)
        return found[0] if found else None

    async def put(self, key: str, value: str, ttl: float) -> None:
        self.values[key] = (value, ttl)


async def test_a_shared_store_spares_other_workers_the_call(fake: FakeClerk) -> None:
    shared = SharedDict()
    use_shared_verdicts(lambda settings: shared)
    key = fake.create_api_key()
    await authenticate(key["secret"], fake.settings(), accepts="any")
    assert len(shared.values) == 1
    stored_key, (text, ttl) = next(iter(shared.values.items()))
    assert key["secret"] not in stored_key and key["secret"] not in text
    assert 0 < ttl <= 60
    before = fake.verify_calls()
    clear_verifiers()  # another worker: an empty in-process cache
    auth = await authenticate(key["secret"], fake.settings(), accepts="any")
    assert isinstance(auth, MachineAuth) and auth.id == key["id"]
    assert fake.verify_calls() == before


def test_verifiers_are_shared_per_instance(fake: FakeClerk) -> None:
    assert verifier_for(fake.settings()) is verifier_for(fake.settings())
    assert verifier_for(fake.settings()) is not verifier_for(fake.settings(secret_key="sk_test_2"))
    assert "sk_" not in repr(verifier_for(fake.settings()))


def scripted_clerk(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> Any:
    async def clerk(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return clerk


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "api_key_revoked", "token-revoked"),
        (400, "token_expired", "token-expired"),
        (422, "form_param_value_invalid", "token-invalid"),
    ],
)
async def test_clerk_error_codes_name_revoked_and_expired(
    status: int, code: str, expected: str
) -> None:
    body = {"errors": [{"code": code, "message": "m", "long_message": "l"}]}
    with serve_app(scripted_clerk(status, body, [])) as url:
        settings = ClerkSettings(issuer="https://x.example", api_url=url, secret_key="sk_test_x")
        error = await refused("ak_" + "e" * 40, settings)
    assert (error.status_code, error.reason.value) == (401, expected)


async def test_a_retry_after_that_is_not_seconds_falls_back() -> None:
    app = scripted_clerk(429, {"errors": []}, [(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")])
    with serve_app(app) as url:
        settings = ClerkSettings(issuer="https://x.example", api_url=url, secret_key="sk_test_x")
        error = await refused("ak_" + "r" * 40, settings)
    assert error.headers == {"Retry-After": "10"}


async def test_failures_are_logged_without_the_token(
    fake: FakeClerk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="clerk_deps")
    settings = fake.settings(machine_verify_rate=0.01, machine_verify_burst=1)
    tokens = [random_key() for _ in range(20)]
    key = fake.create_api_key()
    with fake.machine_verify_outage(503):
        await refused(key["secret"], settings)
    for token in tokens:
        await refused(token, settings)
    messages = [r.getMessage() for r in caplog.records]
    assert any("HTTP 503" in m for m in messages)
    assert sum("budget" in m for m in messages) == 1  # a flood is logged once, not per request
    assert not any(t in m for m in messages for t in [*tokens, key["secret"], fake.secret_key])
