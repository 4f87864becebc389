"""``make bench``: one run, one table; every figure is also a ratio to the floor of that run.

    python bench/run.py              # the full table (about a minute on two cores)
    python bench/run.py --quick      # small sizes: checks that the bench runs
    python bench/run.py --profile    # then cProfile's view of cold and warm verification

Each row's method is the docstring of the function that measures it: verify.py (floor,
cold, warm), routes.py (a protected route against a trivial one), peers.py (other libraries),
extensions.py (machine tokens, revocation, the shared store). harness.py holds the tokens,
the timing loop and the table. Targets are printed, never asserted: machines are noisy.
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import extensions
import peers
import routes
import verify
from cryptography.hazmat.primitives.asymmetric import rsa
from harness import (
    APP_ORIGIN,
    PARTS,
    Measurement,
    Row,
    Timing,
    drive,
    forget_verified_tokens,
    format_table,
    load_average,
    measure_round_robin,
    mint,
    missing_row,
    timed_row,
)

from clerk_deps import verify_token
from clerk_deps.testing import TestIssuer

ROOT = Path(__file__).resolve().parents[1]

COLD_TARGET = 2.0
WARM_TARGET = 0.10
ROUTE_TARGETS = {"repeated": 0.5, "distinct": 2.5}
REVOCATION_TARGET = 0.05


@dataclass
class Config:
    tokens: int = 1500  # distinct tokens per repeat of a cold row
    repeats: int = 7
    warm_iterations: int = 20_000
    propagation_samples: int = 100
    routes: bool = True
    peers: bool = True
    results: Path | None = ROOT / "bench" / "results"


@dataclass
class BenchResult:
    rows: list[Row]
    table: str
    notes: list[str] = field(default_factory=list)


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _issuers() -> list[TestIssuer]:
    """Three Clerk instances, each with its own key; the first is the one most rows use."""
    first = TestIssuer(issuer="https://clerk.bench-one.example", kid="ins_bench_one")
    others = [
        TestIssuer(
            issuer=f"https://clerk.bench-{name}.example",
            kid=f"ins_bench_{name}",
            private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        for name in ("two", "three")
    ]
    return [first, *others]


def run_bench(config: Config) -> BenchResult:
    started, load_start = time.perf_counter(), load_average()
    issuers = _issuers()
    settings = issuers[0].settings(authorized_parties=[APP_ORIGIN])
    _log(f"minting {config.tokens:,} tokens per instance (RS256, RSA-2048) ...")
    tokens = mint(issuers[0], config.tokens)
    several = [t for i in issuers[1:] for t in mint(i, config.tokens // 3)]
    several = [*tokens[: config.tokens - len(several)], *several]
    several = [several[i] for i in sorted(range(len(several)), key=lambda i: i % 3)]

    timed: list[Measurement] = [
        verify.floor(issuers[0].private_key.public_key(), tokens),
        verify.signature_check(issuers[0].public_pem, tokens),
        verify.verify_cold(settings, tokens),
        verify.verify_warm(settings, tokens[0], config.warm_iterations),
    ]
    pending: dict[str, str] = {}
    for name, made in (
        ("api_key", extensions.api_key_cached(settings, config.warm_iterations)),
        ("m2m", extensions.m2m_jwt_cold(settings, config.tokens)),
        ("revocation", extensions.revocation_warm(settings, tokens[0], config.warm_iterations)),
    ):
        if isinstance(made, str):
            pending[name] = made
        else:
            timed.append(Measurement(name, made.run, made.prepare))
    with ExitStack() as stack:
        route_rows = None
        if config.routes:
            stack.enter_context(routes.environment(issuers[0]))
            route_rows = routes.RouteRows(issuers, {"one": tokens, "several": several})
            stack.callback(route_rows.close)
            timed += route_rows.measurements()
        checks: dict[str, Callable[[], str]] = {}
        if config.peers:
            for label, (measurement, check) in zip(
                peers.LABELS,
                (
                    peers.fastapi_clerk_auth(issuers[0], tokens, stack),
                    peers.clerk_backend_api(issuers[0], tokens),
                ),
                strict=True,
            ):
                checks[label] = check
                if measurement is not None:
                    timed.append(measurement)
        _log(f"timing {len(timed)} rows round-robin, {config.repeats} repeats ...")
        timings = measure_round_robin(timed, config.repeats)
        extensions.cleanup()
        void = {label: check() for label, check in checks.items()}
        paths = route_rows.paths if route_rows else {}
    rows = _latency_rows(timings, pending, config.propagation_samples)
    rows += _route_rows(timings, paths, config.routes)
    rows += _peer_rows(timings, void, config.peers)
    rows += [_memory_row(settings, tokens, timings["floor"].median_us)]
    notes = [
        f"load average at start {load_start}, at end {load_average()} "
        f"({platform.machine()}, {_cpus()} CPUs): other processes share the cores, so expect "
        f"noise; the ratios come from one run, measured round-robin in {PARTS} slices per repeat.",
        f"thread CPU time, median of {config.repeats} repeats; cold rows: {config.tokens:,} "
        f"distinct tokens per repeat; warm rows: one token x {config.warm_iterations:,}.",
        f"python {platform.python_version()}, clerk_deps at {_commit()}; "
        f"{time.perf_counter() - started:.0f} s in all.",
    ]
    return BenchResult(rows, format_table(rows), notes)


def _latency_rows(
    timings: dict[str, Timing], pending: dict[str, str], propagation_samples: int
) -> list[Row]:
    f = timings["floor"].median_us
    cold, warm = timings["cold"].median_us, timings["warm"].median_us
    section = "verify"
    rows = [
        timed_row(section, "floor: cryptography RS256 verify", f, f),
        timed_row(
            section,
            "RS256 check as verify_token makes it (reference)",
            timings["signature"].median_us,
            f,
        ),
        timed_row(section, "verify_token, cold (v2 token with organization)", cold, f, COLD_TARGET),
        timed_row(section, "verify_token, warm (repeated token)", warm, f, WARM_TARGET),
    ]
    labels = {
        "api_key": ("API key, cached verdict (target: <= warm)", warm / f),
        "m2m": ("M2M JWT, cold (target: <= cold)", cold / f),
    }
    for name, (label, target) in labels.items():
        if name in pending:
            rows.append(missing_row("machine", label, pending[name], target))
        else:
            rows.append(timed_row("machine", label, timings[name].median_us, f, target))
    label = "revocation check added to a warm hit"
    if "revocation" in pending:
        rows.append(missing_row("revocation", label, pending["revocation"], REVOCATION_TARGET))
    else:
        added = timings["revocation"].median_us - warm
        rows.append(timed_row("revocation", label, added, f, REVOCATION_TARGET))
    propagation = extensions.redis_propagation(propagation_samples)
    label = "Redis: revocation reaches another worker"
    if isinstance(propagation, str):
        rows.append(Row("revocation", label, f"not measured: {propagation}", None, "< 1 s"))
    else:
        median, worst = propagation
        status = "MET" if worst < 1000 else "MISSED"
        value = f"median {median:,.1f} ms, worst {worst:,.1f} ms of {propagation_samples}"
        rows.append(Row("revocation", label, value, None, "< 1 s", status))
    return rows


def _route_rows(timings: dict[str, Timing], paths: dict[str, str], enabled: bool) -> list[Row]:
    f = timings["floor"].median_us
    rows = []
    for config in routes.CONFIGS:
        for mode, target in ROUTE_TARGETS.items():
            label = f"route, {config}, {mode} token(s)"
            if not enabled or config not in paths:
                why = "disabled" if not enabled else "needs ClerkAuth (clerk_deps.auth)"
                rows.append(missing_row("route", label, why, target))
                continue
            protected = timings[f"{config}/{mode}"].median_us
            baseline = timings[f"baseline/{mode}"].median_us
            row = timed_row("route", label, protected - baseline, f, target)
            value = f"+{protected - baseline:,.1f} us ({protected:,.0f} vs {baseline:,.0f})"
            rows.append(Row(row.section, label, value, row.ratio, row.target, row.status))
    if enabled and routes.REFERENCE in paths:  # what the same RSA check costs inside a request
        protected = timings[f"{routes.REFERENCE}/distinct"].median_us
        baseline = timings["baseline/distinct"].median_us
        label = f"route, {routes.REFERENCE}, distinct tokens (reference)"
        value = f"+{protected - baseline:,.1f} us ({protected:,.0f} vs {baseline:,.0f})"
        rows.append(Row("route", label, value, (protected - baseline) / f))
    return rows


def _peer_rows(timings: dict[str, Timing], void: dict[str, str], enabled: bool) -> list[Row]:
    f = timings["floor"].median_us
    rows = []
    for label in peers.LABELS:
        why = "disabled" if not enabled else void.get(label, "")
        if why or label not in timings:
            rows.append(missing_row("peers", label, why or "not run"))
        else:
            rows.append(timed_row("peers", label, timings[label].median_us, f))
    return rows


def _memory_row(settings: object, tokens: list[str], floor_us: float) -> Row:
    """Memory a cached verification holds (the token text and its claims), by tracemalloc
    over the cold tokens; times the default cache size (10,000) for the bound."""
    forget_verified_tokens()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for token in tokens:
        drive(verify_token(token, settings))  # type: ignore[arg-type]
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(tokens)
    tracemalloc.stop()
    forget_verified_tokens()
    value = f"{per_entry / 1024:.1f} KiB per token; {per_entry * 10_000 / 2**20:.0f} MiB when full"
    return Row("memory", "verified-token cache (default 10,000 tokens)", value)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "n/a"
    return done.stdout.strip() or "n/a"


def profile(config: Config) -> None:
    """cProfile's view of cold and warm verification, sorted by own time."""
    issuer = TestIssuer()
    settings = issuer.settings(authorized_parties=[APP_ORIGIN])
    tokens = mint(issuer, config.tokens)
    for label, run in (
        ("cold", verify.verify_cold(settings, tokens)),
        ("warm", verify.verify_warm(settings, tokens[0], config.warm_iterations)),
    ):
        if run.prepare is not None:
            run.prepare(0, 1)
        profiler = cProfile.Profile()
        profiler.runcall(run.run, 0, 1)
        print(f"\ncProfile, {label}:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="clerk_deps benchmark: one run, one table")
    parser.add_argument("--quick", action="store_true", help="small sizes (checks it runs)")
    parser.add_argument("--no-routes", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--profile", action="store_true", help="then profile cold and warm")
    args = parser.parse_args(argv)
    config = Config(routes=not args.no_routes, peers=not args.no_peers)
    if args.quick:
        config.tokens, config.repeats, config.warm_iterations = 150, 3, 2000
    result = run_bench(config)
    text = "\n".join([result.table, "", *(f"- {note}" for note in result.notes)])
    print(text)
    if config.results is not None:
        config.results.mkdir(parents=True, exist_ok=True)
        (config.results / "latest.md").write_text(text + "\n")
    if args.profile:
        profile(config)


if __name__ == "__main__":
    main()
