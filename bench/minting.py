"""Mint distinct Clerk-shaped session tokens fast enough for a benchmark.

RSA signing is the cost (about 1 to 2 ms per RS256 token with a 2048-bit key, against about
0.05 ms to verify one), so tokens are signed by a pool of worker processes, one per core.
Every token comes from :class:`clerk_deps.testing.TestIssuer`: the same header and claims as
Clerk's v2 session tokens, with distinct ``sub``, ``sid`` and ``jti``. Their lifetime is one
hour instead of Clerk's 60 seconds, so that tokens minted at the start of a run are still
valid at its end; the lifetime does not change the cost of verifying them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clerk_deps.testing import TestIssuer

TOKEN_LIFETIME = 3600
BATCH = 250

_issuer: TestIssuer | None = None


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issuer_from_pem(pem: bytes) -> TestIssuer:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return TestIssuer(private_key=key)


def _init_worker(pem: bytes) -> None:
    global _issuer
    _issuer = _issuer_from_pem(pem)


def mint_one(issuer: TestIssuer, index: int, now: float | None = None) -> str:
    issued_at = int(time.time() if now is None else now)
    return issuer.token(f"user_bench_{index:06d}", now=issued_at, exp=issued_at + TOKEN_LIFETIME)


def _mint_range(bounds: tuple[int, int]) -> list[str]:
    assert _issuer is not None
    return [mint_one(_issuer, i) for i in range(*bounds)]


def _batches(start: int, count: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, start + count)) for i in range(start, start + count, size)]


def workers() -> int:
    return max(1, os.cpu_count() or 1)


def _context() -> Any:
    # fork is quick and safe here (no threads yet in the parent while minting); elsewhere spawn
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def mint_tokens(issuer: TestIssuer, count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct tokens signed by ``issuer``'s key, in parallel when worth it."""
    if count <= 2 * BATCH or workers() == 1:
        return [mint_one(issuer, i) for i in range(start, start + count)]
    return [token for batch in iter_token_batches(issuer, count, start=start) for token in batch]


def iter_token_batches(
    issuer: TestIssuer, count: int, *, start: int = 0, size: int = BATCH
) -> Iterator[list[str]]:
    """Distinct tokens in batches, in order, signed by a process pool while the caller works.

    At most two batches per worker are in flight, so a slow consumer never holds more than a
    few thousand tokens in memory (the memory check relies on this).
    """
    pem = private_key_pem(issuer.private_key)
    pending: deque[Future[list[str]]] = deque()
    bounds = iter(_batches(start, count, size))
    with ProcessPoolExecutor(
        max_workers=workers(), mp_context=_context(), initializer=_init_worker, initargs=(pem,)
    ) as pool:
        for batch in bounds:
            pending.append(pool.submit(_mint_range, batch))
            if len(pending) >= 2 * workers():
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
