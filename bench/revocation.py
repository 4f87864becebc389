"""Revocation's costs: what the check adds to a warm token-cache hit (as a fraction of one RSA
verification), and how long a revocation takes to reach another worker through Redis.

    python bench/revocation.py [redis://127.0.0.1:6379/0]

Both are functions for bench/run.py: :func:`revocation_overhead` and :func:`redis_propagation`.
Ratios come from one run (the RSA floor is measured in the same process), never from constants.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clerk_deps import verify_token
from clerk_deps.redis_store import RedisStore
from clerk_deps.revocation import RevocationList, revocation_list
from clerk_deps.store import MemoryStore
from clerk_deps.testing import TestIssuer


async def _per_call(token: str, settings: Any, rounds: int) -> float:
    await verify_token(token, settings)  # warm: verified once, then cache hits
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            await verify_token(token, settings)
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


async def _overhead(rounds: int, revoked: int) -> dict[str, float]:
    issuer = TestIssuer()
    token = issuer.token("user_bench", sid="sess_bench")
    for index in range(revoked):  # a realistic list: other sessions ended recently
        revocation_list().revoke("session", f"sess_ended_{index}")
    hit_off = await _per_call(token, issuer.settings(), rounds)
    hit_on = await _per_call(token, issuer.settings(revocation="webhooks"), rounds)
    rsa = await _per_call(token, issuer.settings(token_cache_size=0), max(rounds // 20, 50))
    return {
        "warm_hit_us": hit_off * 1e6,
        "warm_hit_with_revocation_us": hit_on * 1e6,
        "added_us": (hit_on - hit_off) * 1e6,
        "rsa_verify_us": rsa * 1e6,
        "added_over_rsa": (hit_on - hit_off) / rsa,
    }


def revocation_overhead(rounds: int = 20_000, revoked: int = 1_000) -> dict[str, float]:
    """Per-call cost of a warm hit without and with ``CLERK_REVOCATION=webhooks`` (``revoked``
    other sessions on the list), a fresh RSA verification, and the added cost over RSA."""
    return asyncio.run(_overhead(rounds, revoked))


async def _propagation(url: str, samples: int) -> dict[str, float]:
    sender = RedisStore(url, fallback=MemoryStore(), revocations=RevocationList())
    receiver = RedisStore(url, fallback=MemoryStore(), revocations=RevocationList())
    await sender.ready()
    await receiver.ready()
    seen = receiver.revocations
    delays = []
    try:
        for index in range(samples):
            ident = f"sess_propagation_{time.time_ns()}_{index}"
            start = time.perf_counter()
            await sender.publish_revocation(sender.revocations.revoke("session", ident))
            while not any(entry.id == ident for entry in seen.snapshot()):  # noqa: ASYNC110
                await asyncio.sleep(0)
            delays.append(time.perf_counter() - start)
    finally:
        await sender.close()
        await receiver.close()
    return {
        "median_ms": statistics.median(delays) * 1e3,
        "worst_ms": max(delays) * 1e3,
        "samples": float(samples),
    }


def redis_propagation(url: str, samples: int = 100) -> dict[str, float]:
    """Time from publishing a revocation in one worker's store until another worker's list
    holds it, through the Redis at ``url``: median and worst of ``samples``."""
    return asyncio.run(_propagation(url, samples))


def main() -> None:
    overhead = revocation_overhead()
    print("revocation check on a warm hit:")
    for name, value in overhead.items():
        print(f"    {name:32} {value:10.3f}")
    print(f"    target: added_over_rsa <= 0.05 -> {overhead['added_over_rsa'] <= 0.05}")
    if len(sys.argv) > 1:
        propagation = redis_propagation(sys.argv[1])
        print(f"revocation reaching another worker through {sys.argv[1]}:")
        for name, value in propagation.items():
            print(f"    {name:32} {value:10.3f}")


if __name__ == "__main__":
    main()
