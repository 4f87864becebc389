"""Machine-token verdicts shared through a real redis-server: one worker's verification spares
the others their Backend API call, and Redis going away degrades to per-process caching."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clerk_deps import ClerkAuthError, MachineAuth, authenticate
from clerk_deps.machine_cache import use_shared_verdicts
from clerk_deps.machine_verify import clear_verifiers
from clerk_deps.redis_store import RedisStore
from clerk_deps.store import MemoryStore, close_stores
from clerk_deps.testing import FakeClerk

from .redis_server import RedisServer, redis_server

__all__ = ["redis_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("fresh_machine_state")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


async def test_redis_url_shares_verdicts_between_workers(
    redis_server: RedisServer, fake: FakeClerk
) -> None:
    settings = fake.settings(redis_url=redis_server.url)
    key = fake.create_api_key("org_shared")
    before = fake.verify_calls()
    assert isinstance(await authenticate(key["secret"], settings, accepts="api_key"), MachineAuth)
    assert fake.verify_calls() - before == 1
    await close_stores()

    # Another worker: its own Redis connection, an empty in-process cache.
    other = RedisStore(redis_server.url, fallback=MemoryStore())
    try:
        clear_verifiers()
        use_shared_verdicts(lambda _settings: other)
        auth = await authenticate(key["secret"], settings, accepts="api_key")
        assert isinstance(auth, MachineAuth) and auth.subject == "org_shared"
        assert fake.verify_calls() - before == 1  # answered from Redis, not from Clerk
        unknown = "ak_" + "u" * 40
        for _ in range(2):
            clear_verifiers()
            with pytest.raises(ClerkAuthError) as refused:
                await authenticate(unknown, settings, accepts="api_key")
            assert refused.value.reason.value == "token-invalid"
        assert fake.verify_calls() - before == 2  # the "unknown" verdict is shared too
    finally:
        await other.close()


async def test_redis_down_falls_back_to_this_process(
    redis_server: RedisServer, fake: FakeClerk
) -> None:
    settings = fake.settings(redis_url=redis_server.url)
    redis_server.stop()
    key = fake.create_api_key()
    before = fake.verify_calls()
    for _ in range(3):
        assert isinstance(await authenticate(key["secret"], settings, accepts="any"), MachineAuth)
    assert fake.verify_calls() - before == 1
    await close_stores()
