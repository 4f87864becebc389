"""The verified-token cache: correctness only (speed lives in bench/)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from clerk_deps import ClerkAuthError, ClerkClaims, ClerkSettings, ErrorReason, verify_token
from clerk_deps.keys import key_source_for
from clerk_deps.testing import TestIssuer
from clerk_deps.token_cache import TokenCache, token_cache_for

ISSUER = TestIssuer()
T0 = 1_800_000_000


class CountingSource:
    """Counts how often verification reaches the key source (i.e. is not served cached)."""

    def __init__(self, settings: ClerkSettings, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        source = key_source_for(settings)
        original, at_hand = source.get_key, source.key_at_hand

        async def counted(kid: str | None) -> Any:
            self.calls += 1
            return await original(kid)

        def counted_at_hand(kid: str) -> Any:
            self.calls += 1
            return at_hand(kid)

        monkeypatch.setattr(source, "get_key", counted)
        monkeypatch.setattr(source, "key_at_hand", counted_at_hand)


def claims(exp: int, nbf: int | None = None) -> ClerkClaims:
    return ClerkClaims(sub="user_x", iat=exp - 60, exp=exp, nbf=nbf)


async def test_repeated_token_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ISSUER.settings()
    counter = CountingSource(settings, monkeypatch)
    token = ISSUER.token("user_cached", now=T0)
    first = await verify_token(token, settings, clock=lambda: T0 + 1)
    second = await verify_token(token, settings, clock=lambda: T0 + 2)
    assert first.sub == second.sub == "user_cached"
    assert counter.calls == 1


async def test_expired_token_never_served_from_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ISSUER.settings(leeway=5)
    counter = CountingSource(settings, monkeypatch)
    token = ISSUER.token(now=T0)  # exp = T0 + 60
    await verify_token(token, settings, clock=lambda: T0)
    await verify_token(token, settings, clock=lambda: T0 + 64)
    assert counter.calls == 1
    with pytest.raises(ClerkAuthError) as error:
        await verify_token(token, settings, clock=lambda: T0 + 65)
    assert error.value.reason is ErrorReason.TOKEN_EXPIRED
    assert counter.calls == 2


async def test_not_yet_valid_rechecked_on_hit() -> None:
    cache = TokenCache(10, leeway=0)
    cache.put("t", claims(exp=T0 + 60, nbf=T0 + 30), key_version=0)
    assert cache.get("t", T0, key_version=0) is None
    assert cache.get("t", T0 + 30, key_version=0) is not None


async def test_invalid_tokens_are_never_cached() -> None:
    settings = ISSUER.settings()
    cache = token_cache_for(
        key_source_for(settings), settings.verification_policy(), 100, settings.leeway
    )
    assert cache is not None
    for bad in (ISSUER.forged_token(), ISSUER.expired_token(), "x.y.z", ISSUER.token(sid=None)):
        with pytest.raises(ClerkAuthError):
            await verify_token(bad, settings)
    assert len(cache) == 0
    await verify_token(ISSUER.token(), settings)
    assert len(cache) == 1


async def test_zero_disables_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ISSUER.settings(token_cache_size=0)
    counter = CountingSource(settings, monkeypatch)
    token = ISSUER.token()
    for _ in range(3):
        await verify_token(token, settings)
    assert counter.calls == 3


def test_bound_respected_least_recently_used_out() -> None:
    cache = TokenCache(3, leeway=0)
    for name in "abc":
        cache.put(name, claims(exp=T0 + 60), key_version=0)
    assert cache.get("a", T0, 0) is not None  # a is now the most recent
    cache.put("d", claims(exp=T0 + 60), key_version=0)
    assert len(cache) == 3
    assert cache.get("b", T0, 0) is None
    assert all(cache.get(name, T0, 0) is not None for name in "acd")


def test_key_version_change_empties_the_cache() -> None:
    cache = TokenCache(10, leeway=0)
    cache.put("a", claims(exp=T0 + 60), key_version=1)
    cache.put("b", claims(exp=T0 + 60), key_version=1)
    assert cache.get("a", T0, key_version=2) is None
    assert len(cache) == 0
    cache.put("c", claims(exp=T0 + 60), key_version=2)
    cache.put("d", claims(exp=T0 + 60), key_version=3)  # a put under newer keys also flushes
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0


async def test_scopes_are_isolated() -> None:
    lax = ISSUER.settings()
    strict = ISSUER.settings(authorized_parties=["https://app.example"])
    token = ISSUER.token(azp="https://evil.example")
    assert (await verify_token(token, lax)).azp == "https://evil.example"
    with pytest.raises(ClerkAuthError) as error:
        await verify_token(token, strict)
    assert error.value.reason is ErrorReason.TOKEN_INVALID_AUTHORIZED_PARTIES
    other_issuer = TestIssuer(issuer="https://other.example")  # same key, other issuer
    with pytest.raises(ClerkAuthError) as issuer_error:
        await verify_token(token, other_issuer.settings())
    assert issuer_error.value.reason is ErrorReason.TOKEN_INVALID_ISSUER


async def test_equal_settings_share_one_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingSource(ISSUER.settings(), monkeypatch)
    token = ISSUER.token()
    await verify_token(token, ISSUER.settings())
    await verify_token(token, ISSUER.settings())  # a new but equal settings object
    assert counter.calls == 1


def test_concurrent_threads_keep_the_bound_and_the_entries_consistent() -> None:
    cache = TokenCache(50, leeway=0)
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(2_000):
                name = f"t{(offset * 7 + i) % 120}"
                cache.put(name, claims(exp=T0 + 60), key_version=0)
                hit = cache.get(name, T0, key_version=0)
                assert hit is None or hit.exp == T0 + 60
                assert len(cache) <= 50
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) == 50


async def test_concurrent_tasks_verify_the_same_token(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ISSUER.settings()
    token = ISSUER.token("user_many")
    results = await asyncio.gather(*(verify_token(token, settings) for _ in range(100)))
    assert {claims.sub for claims in results} == {"user_many"}


async def test_cached_claims_cannot_be_changed_by_a_route() -> None:
    """A hit hands every request the same object: it must be read-only all the way down."""
    settings = ISSUER.settings()
    token = ISSUER.token(
        org_id="org_1", org_role="member", org_permissions=["org:a:read"], meta={"tags": ["x"]}
    )
    first = await verify_token(token, settings)
    with pytest.raises(TypeError, match="read-only"):
        first.org_permissions.append("org:admin:everything")
    extra = first.model_extra or {}
    with pytest.raises(TypeError, match="read-only"):
        extra["meta"]["tags"].append("admin")
    with pytest.raises(TypeError, match="read-only"):
        extra["meta"]["tags2"] = []
    second = await verify_token(token, settings)
    assert second is first
    assert second.org_permissions == ["org:a:read"]
    assert not second.has(permission="org:admin:everything")
    assert second.model_dump()["meta"] == {"tags": ["x"]}


async def test_cached_claims_are_read_only_down_to_custom_claims_and_act() -> None:
    settings = ISSUER.settings()
    act = {"sub": "user_support", "sid": "sess_s", "iss": "https://dashboard.clerk.com"}
    token = ISSUER.token(
        "user_ro",
        act={**act, "support": {"ticket": [1, {"level": 2}]}},
        roles=["reader"],
        meta={"a": {"b": [1]}},
    )
    first = await verify_token(token, settings)
    extra = first.model_extra
    assert extra is not None and first.act is not None and first.act.model_extra is not None
    act_extra = first.act.model_extra
    attempts = [
        lambda: extra.__setitem__("roles", ["admin"]),  # model_extra itself
        lambda: extra.update(is_admin=True),
        lambda: extra.pop("roles"),
        lambda: extra["roles"].append("admin"),
        lambda: extra["meta"]["a"]["b"].append(2),
        lambda: extra["meta"]["a"].setdefault("c", 1),
        lambda: act_extra.__setitem__("support", None),  # act's extras
        lambda: act_extra["support"]["ticket"].append(3),
        lambda: act_extra["support"]["ticket"][1].update(level=9),
    ]
    for attempt in attempts:
        with pytest.raises(TypeError, match="read-only"):
            attempt()
    with pytest.raises(Exception, match="frozen"):
        first.act.sub = "user_attacker"  # type: ignore[misc]
    second = await verify_token(token, settings)
    assert second is first
    assert second.model_dump(include={"roles", "meta", "act"}) == {
        "roles": ["reader"],
        "meta": {"a": {"b": [1]}},
        "act": {**act, "type": None, "support": {"ticket": [1, {"level": 2}]}},
    }


async def test_a_respelled_token_is_refused_and_never_a_second_entry() -> None:
    """The unused low bits of the last signature character give other spellings of one
    token; only the canonical one is accepted, so the cache holds it once."""
    settings = ISSUER.settings()
    token = ISSUER.token("user_spelling")
    head, signature = token.rsplit(".", 1)
    assert len(signature) % 4 == 2  # 256 bytes: the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    base = alphabet.index(signature[-1])
    spellings = [f"{head}.{signature[:-1]}{alphabet[base + low]}" for low in range(1, 16)]
    await verify_token(token, settings)
    cache = token_cache_for(
        key_source_for(settings), settings.verification_policy(), 10, settings.leeway
    )
    assert cache is not None and len(cache) >= 1
    before = len(cache)
    for spelling in spellings:
        with pytest.raises(ClerkAuthError) as error:
            await verify_token(spelling, settings)
        assert error.value.reason is ErrorReason.TOKEN_INVALID
    assert len(cache) == before
    assert (await verify_token(token, settings)).sub == "user_spelling"


async def test_hits_compare_fractional_numeric_dates_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ISSUER.settings(leeway=0)
    counter = CountingSource(settings, monkeypatch)
    token = ISSUER.token("user_fraction", iat=T0, nbf=T0 + 0.5, exp=T0 + 60.5)
    await verify_token(token, settings, clock=lambda: T0 + 0.6)
    assert (await verify_token(token, settings, clock=lambda: T0 + 60.4)).sub == "user_fraction"
    assert counter.calls == 1  # a hit until exp = T0 + 60.5 exactly, not its whole second
    for now, reason in [
        (T0 + 0.4, ErrorReason.TOKEN_NOT_ACTIVE_YET),  # before nbf = T0 + 0.5
        (T0 + 60.5, ErrorReason.TOKEN_EXPIRED),
    ]:
        with pytest.raises(ClerkAuthError) as error:
            await verify_token(token, settings, clock=lambda now=now: now)
        assert error.value.reason is reason
