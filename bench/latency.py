"""Per-call latency: the floor, ``verify_token`` cold and warm, and the FastAPI dependency.

Method, for every row: a loop over prepared inputs; the figure is the median over several
repeats of (time / calls). All rows, the peers' included, are measured round-robin, one
repeat of each in turn, so a slow moment of the machine hits every row alike instead of one.
The garbage collector stays on (a request pays for it too) and is run before each repeat.

Time is the measuring thread's CPU time (``time.thread_time_ns``): on a shared machine,
wall-clock time also counts the moments other processes held the core, which is noise, not
cost. On an idle machine the two agree; the wall-clock (``time.perf_counter_ns``) medians are
kept next to them in bench/results/latest.json.

``verify_token`` is a coroutine function. With a static key (``CLERK_JWT_KEY``) it never
suspends, so the bench drives each coroutine with ``coro.send(None)``, which runs it to
completion and raises ``StopIteration`` with the result: exactly the work an ``await
verify_token(...)`` inside a request handler pays (creating and running the coroutine),
without timing an event loop's scheduling. A coroutine that did suspend is an error here.
"""

from __future__ import annotations

import base64
import gc
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request

from clerk_deps import ClerkSettings, get_settings, require_clerk_user, verify_token
from clerk_deps.keys import key_source_for
from clerk_deps.token_cache import token_cache_for

T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending; return its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("the coroutine suspended: it needs an event loop (network key source?)")


@dataclass(frozen=True)
class Timing:
    """Median microseconds per call over the repeats (thread CPU time; wall-clock too)."""

    median_us: float
    runs_us: tuple[float, ...]
    wall_median_us: float
    calls: int

    @property
    def spread(self) -> float:
        """(max - min) / median of the runs: a quick noise indicator."""
        return (max(self.runs_us) - min(self.runs_us)) / self.median_us


@dataclass(frozen=True)
class Measurement:
    """``run_once`` performs N calls and returns N; ``before_each`` resets state, untimed."""

    name: str
    run_once: Callable[[], int]
    before_each: Callable[[], None] | None = None


def measure_round_robin(measurements: Sequence[Measurement], repeats: int) -> dict[str, Timing]:
    """One repeat of each measurement in turn, ``repeats`` times; the median of each."""
    cpu: dict[str, list[float]] = {m.name: [] for m in measurements}
    wall: dict[str, list[float]] = {m.name: [] for m in measurements}
    calls: dict[str, int] = {}
    for _ in range(repeats):
        for m in measurements:
            if m.before_each is not None:
                m.before_each()
            gc.collect()
            wall_start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
            n = m.run_once()
            cpu_ns = time.thread_time_ns() - cpu_start
            wall_ns = time.perf_counter_ns() - wall_start
            cpu[m.name].append(cpu_ns / n / 1000)
            wall[m.name].append(wall_ns / n / 1000)
            calls[m.name] = n
    return {
        name: Timing(
            statistics.median(runs), tuple(runs), statistics.median(wall[name]), calls[name]
        )
        for name, runs in cpu.items()
    }


# -- inputs ------------------------------------------------------------------------------


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def signature_parts(tokens: Sequence[str]) -> list[tuple[bytes, bytes]]:
    """(signature, signing input) of each token, decoded ahead of the floor's timing."""
    parts = []
    for token in tokens:
        header, payload, signature = token.split(".")
        parts.append((_b64decode(signature), f"{header}.{payload}".encode("ascii")))
    return parts


def bearer_request(token: str) -> Request:
    """A Starlette request carrying ``Authorization: Bearer <token>``, as FastAPI builds it."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/protected",
        "raw_path": b"/protected",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer " + token.encode("ascii")),
        ],
    }
    return Request(scope)


def clear_token_cache(settings: ClerkSettings) -> None:
    """Forget every verified token of ``settings``' scope, so the next calls are cold."""
    cache = token_cache_for(
        key_source_for(settings),
        settings.verification_policy(),
        settings.token_cache_size,
        settings.leeway,
    )
    if cache is not None:
        cache.clear()


# -- rows --------------------------------------------------------------------------------


def floor(public_key: rsa.RSAPublicKey, tokens: Sequence[str]) -> Measurement:
    """Raw ``cryptography`` RS256 verification: the least any verifier can do."""
    parts = signature_parts(tokens)
    verify = public_key.verify
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def run() -> int:
        for signature, signing_input in parts:
            verify(signature, signing_input, pkcs1, sha256)
        return len(parts)

    return Measurement("floor", run)


def verify_cold(settings: ClerkSettings, tokens: Sequence[str]) -> Measurement:
    """``verify_token`` on tokens it has never seen: the cache is emptied before each repeat."""

    def run() -> int:
        for token in tokens:
            drive(verify_token(token, settings))
        return len(tokens)

    return Measurement("cold", run, lambda: clear_token_cache(settings))


def verify_warm(settings: ClerkSettings, token: str, iterations: int) -> Measurement:
    """``verify_token`` on one token again and again (a browser session's next requests)."""
    batch = [token] * iterations

    def prime() -> None:  # the cold rows empty the shared cache: put the token back, untimed
        drive(verify_token(token, settings))

    def run() -> int:
        for same in batch:
            drive(verify_token(same, settings))
        return iterations

    return Measurement("warm", run, prime)


class _App:
    """Stands in for the FastAPI app in the request scope: where the dependency looks for a
    ``get_settings`` override, as it does in a real app configured by overrides."""

    def __init__(self, settings: ClerkSettings) -> None:
        self.dependency_overrides = {get_settings: lambda: settings}


def _dependency_call(request: Request, settings: ClerkSettings) -> None:
    """What FastAPI runs for ``CurrentUserDep``: one async security dependency."""
    request.scope.setdefault("app", _App(settings))
    drive(require_clerk_user(request))


def dependency_cold(settings: ClerkSettings, tokens: Sequence[str]) -> Measurement:
    """The FastAPI dependency (read the Bearer header, verify) on tokens never seen."""
    requests = [bearer_request(token) for token in tokens]

    def run() -> int:
        for request in requests:
            _dependency_call(request, settings)
        return len(requests)

    return Measurement("dep_cold", run, lambda: clear_token_cache(settings))


def dependency_warm(settings: ClerkSettings, token: str, iterations: int) -> Measurement:
    """The FastAPI dependency on one repeated token."""
    requests = [bearer_request(token) for _ in range(iterations)]

    def prime() -> None:
        drive(verify_token(token, settings))

    def run() -> int:
        for request in requests:
            _dependency_call(request, settings)
        return iterations

    return Measurement("dep_warm", run, prime)
