"""What every row shares: the tokens, the timing loop, and the table.

Timing: each row is a loop over prepared inputs (:class:`Measurement`). Rows take turns in
small slices: a repeat splits every row's inputs into ``PARTS`` parts and runs the first part of
every row, then the second part of every row, and so on, so that a busy moment of a shared
machine hits every row alike (a row's figure is often the difference of two rows). Before each
part, untimed, the row readies the state it measures (caches emptied for a cold row, its token
cached for a warm one). The median of each row's repeats is reported. Time is the measuring
thread's CPU time (``time.thread_time_ns``), which leaves out the moments other processes held
the core; the garbage collector stays on.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clerk_deps.testing import TestIssuer

T = TypeVar("T")

# -- tokens ------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example.com"
TOKEN_LIFETIME = 3600  # Clerk's are 60 s; an hour outlives the run and costs nothing to verify


def realistic_claims(index: int) -> dict[str, Any]:
    """A v2 session with an active organization, as Clerk issues it to a browser app: ``azp``,
    ``sts``, ``o`` with a role, ``per`` and ``fpm``, ``fea`` and ``pla``. The organization and
    role vary with ``index`` (50 organizations, 3 roles), as they do between real users."""
    role, permissions = _ROLES[index % len(_ROLES)]
    org = index % 50
    return {
        "org_id": f"org_2bench{org:04d}",
        "org_slug": f"team-{org}",
        "org_role": role,
        "org_permissions": permissions,
        "fea": "o:invoices,o:members,o:reports,u:export",
        "pla": "o:pro" if org % 2 else "o:team",
        "azp": APP_ORIGIN,
        "sts": "active",
    }


_ROLES = [
    (
        "admin",
        ["org:invoices:read", "org:invoices:write", "org:members:manage", "org:reports:read"],
    ),
    ("billing", ["org:invoices:read", "org:invoices:write", "org:reports:read"]),
    ("member", ["org:invoices:read", "org:reports:read"]),
]


def mint_one(issuer: TestIssuer, index: int) -> str:
    now = int(time.time())
    return issuer.token(
        f"user_bench_{index:06d}", now=now, exp=now + TOKEN_LIFETIME, **realistic_claims(index)
    )


_worker_issuer: TestIssuer | None = None


def _init_worker(pem: bytes, issuer: str, kid: str) -> None:
    global _worker_issuer
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    _worker_issuer = TestIssuer(issuer=issuer, kid=kid, private_key=key)


def _mint_range(bounds: tuple[int, int]) -> list[str]:
    assert _worker_issuer is not None
    return [mint_one(_worker_issuer, i) for i in range(*bounds)]


def mint(issuer: TestIssuer, count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct tokens from ``issuer``; signed by a process per core when worth it
    (RSA signing is about 50 times the cost of verifying)."""
    workers = os.cpu_count() or 1
    if count <= 200 or workers == 1:
        return [mint_one(issuer, i) for i in range(start, start + count)]
    pem = issuer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    size = -(-count // (4 * workers))
    bounds = [(i, min(i + size, start + count)) for i in range(start, start + count, size)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker,
        initargs=(pem, issuer.issuer, issuer.kid),
    ) as pool:  # fmt: skip
        return [token for batch in pool.map(_mint_range, bounds) for token in batch]


# -- timing ------------------------------------------------------------------------------


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending (no event loop timed)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("the coroutine suspended: it needs an event loop (network key source?)")


PARTS = 30


def share(items: Sequence[T], part: int, parts: int) -> Sequence[T]:
    """Part ``part`` of ``parts`` of ``items`` (the parts cover them all, in order)."""
    count = len(items)
    return items[part * count // parts : (part + 1) * count // parts]


@dataclass(frozen=True)
class Measurement:
    """``run(part, parts)`` makes that share of the row's calls and returns how many;
    ``prepare(part, parts)`` readies it, untimed."""

    name: str
    run: Callable[[int, int], int]
    prepare: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class Timing:
    median_us: float  # per call, thread CPU time
    runs_us: tuple[float, ...]

    @property
    def spread(self) -> float:
        """(max - min) / median of the repeats: how noisy this row was."""
        return (max(self.runs_us) - min(self.runs_us)) / self.median_us


def measure_round_robin(
    measurements: Sequence[Measurement], repeats: int, parts: int = PARTS
) -> dict[str, Timing]:
    runs: dict[str, list[float]] = {m.name: [] for m in measurements}
    for _ in range(repeats):
        elapsed = dict.fromkeys(runs, 0)
        calls = dict.fromkeys(runs, 0)
        gc.collect()
        for part in range(parts):
            for m in measurements:
                if m.prepare is not None:
                    m.prepare(part, parts)
                start = time.thread_time_ns()
                calls[m.name] += m.run(part, parts)
                elapsed[m.name] += time.thread_time_ns() - start
        for name in runs:
            runs[name].append(elapsed[name] / calls[name] / 1000)
    return {name: Timing(statistics.median(r), tuple(r)) for name, r in runs.items()}


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    section: str
    label: str
    value: str  # the figure, or "not measured: <why>"
    ratio: float | None = None  # as a multiple of the floor of the same run
    target: str = ""
    status: str = ""  # MET, MISSED, or "" for a row without a target


def timed_row(
    section: str, label: str, us: float, floor_us: float, target: float | None = None
) -> Row:
    """A row in microseconds and x floor; ``target``: the highest ratio that meets it."""
    ratio = us / floor_us
    if target is None:
        return Row(section, label, f"{us:,.1f} us", ratio)
    status = "MET" if ratio <= target else "MISSED"
    return Row(section, label, f"{us:,.1f} us", ratio, f"<= {target:.2f}x", status)


def missing_row(section: str, label: str, why: str, target: float | None = None) -> Row:
    shown = "" if target is None else f"<= {target:.2f}x"
    return Row(section, label, f"not measured: {why}", None, shown)


def format_table(rows: Sequence[Row]) -> str:
    headers = ("", "measurement", "value", "x floor", "target", "status")
    body = [
        (
            r.section,
            r.label,
            r.value,
            "" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [line(cells) for cells in body]
    )


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def forget_verified_tokens() -> None:
    """Empty every verified-token cache, so that the next verifications are cold."""
    from clerk_deps import token_cache

    for _, per_policy in list(token_cache._caches.values()):
        for cache in list(per_policy.values()):
            cache.clear()
