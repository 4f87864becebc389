"""The Redis store against a real redis-server: revocations reach other workers, late workers
load them, shared keys are shared, and an outage degrades to per-process behaviour and heals.

Each "worker" here is a RedisStore with its own revocation list, as separate processes have;
tests/integration/test_fleet.py runs real separate uvicorn processes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from clerk_deps import ClerkAuthError, ClerkSettings, verify_token
from clerk_deps.redis_store import RedisStore, redacted_url
from clerk_deps.revocation import RevocationList, revocation_list
from clerk_deps.store import (
    MemoryStore,
    close_stores,
    memory_store,
    revoke,
    store_for,
)
from clerk_deps.testing import TestIssuer

from .redis_server import RedisServer, eventually, redis_server

__all__ = ["redis_server"]

ISSUER = TestIssuer()


pytestmark = pytest.mark.usefixtures("fresh_revocation_state")


@asynccontextmanager
async def worker(url: str) -> AsyncIterator[RedisStore]:
    """A store as one worker process would hold it: its own list, its own fallback."""
    store = RedisStore(url, fallback=MemoryStore(), revocations=RevocationList())
    await store.ready()
    try:
        yield store
    finally:
        await store.close()


def revoked_ids(store: RedisStore) -> set[str]:
    return {entry.id for entry in store.revocations.snapshot()}


async def test_a_revocation_published_by_one_worker_reaches_the_others(
    redis_server: RedisServer,
) -> None:
    async with worker(redis_server.url) as a, worker(redis_server.url) as b:
        assert a.is_up and b.is_up
        entry = a.revocations.revoke("session", "sess_1")
        await a.publish_revocation(entry)
        await eventually(lambda: "sess_1" in revoked_ids(b), what="sess_1 at worker b")
        assert b.revocations.snapshot()[0].revoked_at == entry.revoked_at


async def test_a_worker_that_starts_late_loads_current_revocations(
    redis_server: RedisServer,
) -> None:
    async with worker(redis_server.url) as a:
        for ident in ("sess_early", "sess_also"):
            await a.publish_revocation(a.revocations.revoke("session", ident))
        await a.publish_revocation(a.revocations.revoke("user", "user_gone"))
    async with worker(redis_server.url) as late:
        assert revoked_ids(late) == {"sess_early", "sess_also", "user_gone"}


async def test_keys_are_shared_between_workers(redis_server: RedisServer) -> None:
    async with worker(redis_server.url) as a, worker(redis_server.url) as b:
        assert await b.get("machine:abc") is None
        await a.put("machine:abc", '{"ok": true}', 30)
        assert await b.get("machine:abc") == '{"ok": true}'
        await a.put("ignored", "x", 0)
        assert await b.get("ignored") is None
        assert await a.add_if_absent("webhook:msg_1", 60) is True
        assert await b.add_if_absent("webhook:msg_1", 60) is False
        await a.forget("webhook:msg_1")
        assert await b.add_if_absent("webhook:msg_1", 60) is True


async def test_an_outage_keeps_revocations_and_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    async with worker(redis_server.url) as a, worker(redis_server.url) as b:
        await a.publish_revocation(a.revocations.revoke("session", "sess_before"))
        await eventually(lambda: "sess_before" in revoked_ids(b), what="first revocation")
        await a.put("email:u1", "a@example.com", 60)

        redis_server.stop()
        await eventually(lambda: not a.is_up and not b.is_up, what="outage noticed")
        assert "unreachable" in caplog.text and "127.0.0.1" in caplog.text
        # nothing already received is forgotten; new work goes on in each process
        assert "sess_before" in revoked_ids(b)
        await a.publish_revocation(a.revocations.revoke("session", "sess_during"))
        assert "sess_during" in revoked_ids(a)
        assert await a.get("email:u1") is None  # Redis is gone: a miss, not an error
        await a.put("email:u2", "b@example.com", 60)
        assert await a.get("email:u2") == "b@example.com"  # kept in process meanwhile
        assert await a.add_if_absent("webhook:m", 60) is True
        assert await a.add_if_absent("webhook:m", 60) is False

        redis_server.start()  # same port: both listeners reconnect by themselves
        await eventually(lambda: a.is_up and b.is_up, timeout=10, what="recovery")
        await eventually(lambda: "sess_during" in revoked_ids(b), what="queued revocation")
        assert "reachable again" in caplog.text
    async with worker(redis_server.url) as late:  # what was queued is in Redis now
        assert "sess_during" in revoked_ids(late) and "sess_before" not in revoked_ids(late)


async def test_an_unreachable_redis_never_blocks_a_request_for_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from .redis_server import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    async with worker(url) as store:
        assert not store.is_up and "hunter2" not in repr(store)
        assert await store.get("x") is None
    assert "hunter2" not in caplog.text
    assert redacted_url(url) == f"redis://127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}"
    assert redacted_url("unix:///run/redis.sock") == "unix:///run/redis.sock"


async def test_settings_with_redis_url_share_revocations_through_redis(
    redis_server: RedisServer,
) -> None:
    settings = ISSUER.settings(revocation="webhooks", redis_url=redis_server.url)
    store = store_for(settings)
    assert isinstance(store, RedisStore) and store is store_for(settings)
    assert store_for(ISSUER.settings()) is memory_store()
    token = ISSUER.token("user_r", sid="sess_r")
    await verify_token(token, settings)  # the first request waits for the snapshot once
    assert store.is_up
    async with worker(redis_server.url) as other:
        await revoke("session", "sess_r", settings)
        await eventually(lambda: "sess_r" in revoked_ids(other), what="published")
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(token, settings)
    assert caught.value.reason == "session-revoked"
    await close_stores()
    assert not store.is_up or store._closed


async def test_a_revocation_from_another_worker_refuses_a_cached_token(
    redis_server: RedisServer,
) -> None:
    settings = ISSUER.settings(revocation="webhooks", redis_url=redis_server.url)
    token = ISSUER.token("user_c", sid="sess_c")
    await verify_token(token, settings)
    async with worker(redis_server.url) as other:
        await other.publish_revocation(other.revocations.revoke("session", "sess_c"))
    await eventually(lambda: revocation_list().snapshot(), what="received")
    with pytest.raises(ClerkAuthError):
        await verify_token(token, settings)
    await close_stores()


def test_without_an_event_loop_the_memory_store_is_used() -> None:
    settings = ClerkSettings(redis_url="redis://127.0.0.1:1/0")
    assert store_for(settings) is memory_store()


async def test_email_look_ups_are_shared_between_workers(redis_server: RedisServer) -> None:
    from clerk_deps.backend_api import ClerkBackendAPI
    from clerk_deps.testing.fakeclerk import FakeClerk
    from clerk_deps.user_email import EmailLookup

    with FakeClerk().serve() as fake:
        user = fake.create_user(email_address="shared@example.com")
        settings = fake.settings(redis_url=redis_server.url)
        # two workers' look-ups (separate caches), one Redis
        first, second = (
            EmailLookup(ClerkBackendAPI.from_settings(settings), shared_by=settings)
            for _ in range(2)
        )
        assert await first.primary_email(user["id"]) == "shared@example.com"
        assert await second.primary_email(user["id"]) == "shared@example.com"
        assert fake.count(f"/v1/users/{user['id']}", "GET") == 1
    await close_stores()
