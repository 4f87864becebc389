"""Rows for machine tokens, revocation and the shared store.

Each function measures one row, or returns why it cannot (what it times is missing). It
returns a :class:`~harness.Measurement` whose ``run(part, parts)`` makes that share of its
calls and returns how many, with any state it needs prepared before returning (or in
``prepare``, untimed). ``run.py`` puts it in the round-robin with the other rows and prints
it with its target.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable

from harness import Measurement, drive, share
from verify import verify_warm

from clerk_deps import ClerkSettings, TokenType, authenticate


def _missing(module: str, what: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"needs {module} ({what})"
    return None


def api_key_cached(settings: ClerkSettings, iterations: int) -> Measurement | str:
    """An ``ak_`` API key whose verdict is cached: ``authenticate(key, settings,
    accepts="api_key")`` again and again, after one call has asked FakeClerk on 127.0.0.1.
    Target: no more than a warm session-token hit (the ``warm`` row's ratio)."""
    from pydantic import SecretStr

    from clerk_deps.machine_verify import clear_verifiers
    from clerk_deps.testing import FakeClerk

    clear_verifiers()
    with FakeClerk().serve() as fake:
        machine_settings = settings.model_copy(
            update={
                "api_url": fake.base_url,
                "secret_key": SecretStr(fake.secret_key),
                "machine_cache_ttl": 3600.0,  # outlives the run: every timed call is a hit
            }
        )
        key = fake.create_api_key("org_bench", scopes=["read"])["secret"]
        asyncio.run(authenticate(key, machine_settings, accepts=TokenType.API_KEY))
        if fake.verify_calls() != 1:  # pragma: no cover - a broken cache, not a figure
            return "the API key was not verified exactly once"
    accepts = TokenType.API_KEY
    batch = [key] * iterations

    def run(part: int, of: int) -> int:
        inputs = share(batch, part, of)
        for same in inputs:
            drive(authenticate(same, machine_settings, accepts=accepts))
        return len(inputs)

    return Measurement("api_key", run)


def m2m_jwt_cold(settings: ClerkSettings, count: int) -> Measurement | str:
    """Distinct M2M JWTs (``sub`` ``mch_...``) minted by the testing kit, verified locally by
    ``authenticate(token, settings, accepts="m2m_token")``: decode, type, signature, claims.
    (JWT machine tokens are not cached, so every call is cold.) Target: no more than a cold
    session token (the ``cold`` row's ratio)."""
    from clerk_deps.testing import TestIssuer

    issuer = TestIssuer(issuer=settings.issuer or "https://clerk.bench.example")
    if settings.jwt_key is None or issuer.public_pem.strip() != settings.jwt_key.strip():
        return "needs settings from the testing kit's default key (TestIssuer().settings())"
    tokens = [issuer.m2m_token(f"mch_{i}", scopes=["mch_api"]) for i in range(count)]
    accepts = TokenType.M2M_TOKEN

    def run(part: int, of: int) -> int:
        inputs = share(tokens, part, of)
        for token in inputs:
            drive(authenticate(token, settings, accepts=accepts))
        return len(inputs)

    return Measurement("m2m", run)


def revocation_warm(settings: ClerkSettings, token: str, iterations: int) -> Measurement | str:
    """A warm hit with ``revocation="webhooks"`` while 1,000 other sessions are revoked: the
    same loop as the ``warm`` row, so the row is its difference with that one (the in-process
    check after a cache hit). Target: <= 0.05x the floor."""
    missing = _missing("clerk_deps.revocation", "revocation")
    if missing:
        return missing
    from clerk_deps.revocation import revocation_list

    revoking = settings.model_copy(update={"revocation": "webhooks"})
    revoked = revocation_list()
    for index in range(1000):
        revoked.revoke("session", f"sess_bench_revoked_{index:04d}")
    _cleanups.append(revoked.clear)
    return verify_warm(revoking, token, iterations, name="revocation")


_cleanups: list[Callable[[], None]] = []


def cleanup() -> None:
    """Undo what the rows changed in the process (the revocation list): call after timing."""
    while _cleanups:
        _cleanups.pop()()


def redis_propagation(samples: int) -> tuple[float, float] | str:
    """Two workers' stores (``RedisStore``, each with its own revocation list, as in two
    processes) on a redis-server started here on 127.0.0.1: one publishes a session's
    revocation, and the time until the other's revocation list holds it is taken, polling
    every 0.2 ms, ``samples`` times. Returns (median, worst) in milliseconds.
    Target: every worker within a second."""
    missing = _missing("clerk_deps.redis_store", "the shared store")
    if missing:
        return missing
    server = shutil.which("redis-server")
    if server is None:
        return "redis-server is not installed"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    return "redis-server did not start"
                time.sleep(0.05)
        return asyncio.run(_propagation(f"redis://127.0.0.1:{port}/0", samples))
    finally:
        process.terminate()
        process.wait(10)


async def _propagation(url: str, samples: int) -> tuple[float, float] | str:
    from clerk_deps.redis_store import RedisStore
    from clerk_deps.revocation import Revocation, RevocationList
    from clerk_deps.store import MemoryStore

    sender, receiver = (
        RedisStore(url, fallback=MemoryStore(), revocations=RevocationList()) for _ in range(2)
    )
    try:
        await sender.ready()
        await receiver.ready()
        delays = []
        for index in range(samples):
            now = time.time()
            entry = Revocation("session", f"sess_bench_{index:04d}", now, now + 3600)
            started = time.perf_counter()
            await sender.publish_revocation(entry)
            while len(receiver.revocations) <= index:
                if time.perf_counter() - started > 5:
                    return "a revocation did not reach the other worker within 5 s"
                await asyncio.sleep(0.0002)
            delays.append((time.perf_counter() - started) * 1000)
    finally:
        await sender.close()
        await receiver.close()
    return statistics.median(delays), max(delays)
