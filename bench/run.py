"""``make bench``: one run, one table, every figure also as a ratio to the floor of the same run.

    python bench/run.py            # the full run (about 2 to 4 minutes on two cores)
    python bench/run.py --quick    # small sizes, for a smoke test of the bench itself

The method of each row is in the docstring of the module that measures it (latency.py,
peers.py, loadtest.py, memory_check.py) and in docs/performance.md. Targets are the issue's
and are printed, never asserted: machines are noisy. The table is also written to
bench/results/ (git-ignored) and the chart to docs/performance.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import latency
import loadtest
import peers
from minting import mint_tokens
from report import Row, format_table, latency_row, met, write_chart

import clerk_deps
from clerk_deps.testing import TestIssuer

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

COLD_TARGET = 2.0
WARM_TARGET = 0.1
DISTINCT_TARGET = 0.90
REPEATED_TARGET = 0.97


@dataclass
class Config:
    tokens: int = 2000  # distinct tokens per latency repeat
    repeats: int = 7
    warm_iterations: int = 20_000
    peers: bool = True
    e2e: bool = True
    e2e_rounds: int = 6
    e2e_seconds: int = 2
    e2e_concurrency: int = 16
    prefer_wrk: bool = True
    memory: bool = True
    memory_tokens: int = 100_000
    memory_bound_mb: float = 64.0
    chart: Path | None = ROOT / "docs" / "performance.png"
    results: Path | None = BENCH_DIR / "results"


@dataclass
class BenchResult:
    rows: list[Row]
    table: str
    notes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _commit() -> str:
    """The measured commit, with '+changes' when clerk_deps/ differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "clerk_deps"],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "n/a"
    return (head or "n/a") + ("+changes" if dirty else "")


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_bench(config: Config) -> BenchResult:
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "clerk_deps": clerk_deps.__dict__.get("__version__", "dev"),
        "loadavg_start": _loadavg(),
        "commit": _commit(),
    }
    issuer = TestIssuer()
    settings = issuer.settings()
    _log(f"minting {config.tokens:,} RS256 tokens (RSA-2048) ...")
    micro = mint_tokens(issuer, config.tokens)
    repeated = micro[0]
    meta["mint_seconds"] = round(time.perf_counter() - started, 1)

    _log("latency: floor, verify_token cold/warm, dependency cold/warm, peers, round-robin ...")
    with ExitStack() as stack:
        ours = [
            latency.floor(issuer.private_key.public_key(), micro),
            latency.verify_cold(settings, micro),
            latency.verify_warm(settings, repeated, config.warm_iterations),
            latency.dependency_cold(settings, micro),
            latency.dependency_warm(settings, repeated, config.warm_iterations),
        ]
        peer_list = peers.prepare_peers(issuer, micro, stack) if config.peers else []
        timed = ours + [p.measurement for p in peer_list if p.measurement is not None]
        timings = latency.measure_round_robin(timed, config.repeats)
        invalid = {p.label: p.validate() for p in peer_list if p.measurement is not None}
    meta["latency"] = {
        name: {"cpu_us": round(t.median_us, 2), "wall_us": round(t.wall_median_us, 2),
               "spread": round(t.spread, 3), "calls": t.calls}
        for name, t in timings.items()
    }  # fmt: skip
    f = timings["floor"].median_us
    cold, warm = timings["cold"].median_us, timings["warm"].median_us
    rows = [
        latency_row("latency", "floor: cryptography RS256 verify", f, f),
        latency_row(
            "latency", "clerk_deps verify_token, cold (distinct)", cold, f,
            target=f"<= {COLD_TARGET:.2f}x floor", status=met(cold / f <= COLD_TARGET),
        ),
        latency_row(
            "latency", "clerk_deps verify_token, warm (repeated)", warm, f,
            target=f"<= {WARM_TARGET:.2f}x floor", status=met(warm / f <= WARM_TARGET),
        ),
        latency_row("latency", "clerk_deps CurrentUserDep, cold", timings["dep_cold"].median_us, f),
        latency_row("latency", "clerk_deps CurrentUserDep, warm", timings["dep_warm"].median_us, f),
    ]  # fmt: skip
    rows += _peer_rows(config, peer_list, timings, invalid, f, cold, timings["dep_cold"].median_us)
    rows += _e2e_rows(config, issuer, repeated, f, meta)
    rows += _memory_rows(config)

    meta["loadavg_end"] = _loadavg()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    notes = _notes(config, meta, config.repeats, config.warm_iterations)
    title = "clerk_deps benchmark (one run; ratios are to the floor of this run)"
    return BenchResult(rows, format_table(rows, title), notes, meta)


def _peer_rows(
    config: Config,
    peer_list: list[peers.Peer],
    timings: dict[str, latency.Timing],
    invalid: dict[str, str],
    f: float,
    cold: float,
    dep_cold: float,
) -> list[Row]:
    names = (
        "fastapi-clerk-auth ClerkHTTPBearer",
        "fastapi-clerk-auth, jwks_cache_keys=True",
        "clerk-backend-api verify_token",
    )
    if not config.peers:
        return [latency_row("peers", name, None, f, reason="disabled") for name in names]
    rows = []
    for name, peer in zip(names, peer_list, strict=True):
        reason = peer.reason or invalid.get(peer.label, "")
        if reason or peer.measurement is None:
            rows.append(latency_row("peers", name, None, f, reason=reason))
            continue
        # like for like: a FastAPI dependency against ours, a function against verify_token
        ours, what = (cold, "verify_token") if "backend" in name else (dep_cold, "our dep")
        us = timings[peer.label].median_us
        target = f"slower than {what} cold"
        rows.append(latency_row("peers", name, us, f, target=target, status=met(us > ours)))
    return rows


def _e2e_rows(
    config: Config, issuer: TestIssuer, repeated: str, f: float, meta: dict[str, Any]
) -> list[Row]:
    labels = [
        ("distinct", "public", "GET /public, distinct tokens"),
        ("distinct", "protected", "GET /protected, distinct tokens"),
        ("repeated", "public", "GET /public, repeated token"),
        ("repeated", "protected", "GET /protected, repeated token"),
    ]
    if not config.e2e:
        return [Row("end to end", label, "not measured: disabled") for *_, label in labels]
    _log("end to end: uvicorn on 127.0.0.1, interleaved rounds ...")

    def mint(count: int) -> list[str]:
        _log(f"minting {count:,} distinct tokens for the protected route ...")
        started = time.perf_counter()
        tokens = mint_tokens(issuer, count, start=config.tokens)
        meta["e2e_mint_seconds"] = round(time.perf_counter() - started, 1)
        return tokens

    result = loadtest.run_e2e(
        issuer.public_pem,
        issuer.issuer,
        repeated,
        mint,
        rounds=config.e2e_rounds,
        seconds=config.e2e_seconds,
        concurrency=config.e2e_concurrency,
        prefer_wrk=config.prefer_wrk,
    )
    rows = []
    for mode, route, label in labels:
        outcome = result.modes[mode]
        cpu = outcome.cpu_us_per_request(route)
        value = f"{outcome.rps(route):,.0f} req/s" + ("" if cpu is None else f", {cpu:.0f} us CPU")
        if outcome.problems():
            rows.append(Row("end to end", label, f"invalid: {outcome.problems()}"))
            continue
        if route == "public":
            rows.append(Row("end to end", label, value))
            continue
        rps_ratio, cpu_ratio = outcome.ratio(), outcome.cpu_ratio()
        public_cpu = outcome.cpu_us_per_request("public")
        if cpu is not None and public_cpu is not None:
            added = cpu - public_cpu
        else:
            added = (1 / outcome.rps(route) - 1 / outcome.rps("public")) * 1e6
        if outcome.client_bound() and cpu_ratio is not None:
            # req/s would compare the load generator with itself: judge by server CPU
            ratio, shown = cpu_ratio, f"{cpu_ratio:.3f} of public by server CPU (client-bound)"
        else:
            ratio = rps_ratio
            shown = f"{rps_ratio:.3f} of public" + (
                "" if cpu_ratio is None else f" (by server CPU {cpu_ratio:.3f})"
            )
        target = DISTINCT_TARGET if mode == "distinct" else REPEATED_TARGET
        rows.append(
            Row(
                "end to end",
                label,
                f"{value}; {shown}",
                added / f,
                f">= {target:.2f} of public",
                met(ratio >= target),
            )
        )
    busy = result.modes["repeated"].utilization("public")
    generator = (
        f"{result.generator}, {result.concurrency} connections, "
        f"{config.e2e_rounds} x {result.round_seconds} s rounds per route and mode"
        + ("" if busy is None else f"; server core {busy:.0%} busy on /public")
    )
    rows.append(Row("end to end", "load generator", generator))
    return rows


def _memory_rows(config: Config) -> list[Row]:
    label = f"RSS after {config.memory_tokens:,} distinct tokens, default cache"
    if not config.memory:
        return [Row("memory", label, "not measured: disabled")]
    _log(f"memory: {config.memory_tokens:,} distinct tokens in a fresh process ...")
    command = [
        sys.executable, str(BENCH_DIR / "memory_check.py"),
        "--tokens", str(config.memory_tokens), "--bound-mb", str(config.memory_bound_mb),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return [Row("memory", label, f"not measured: {done.stderr.strip()[-160:]}")]
    m = json.loads(done.stdout)
    value = (
        f"+{m['adjusted_mb']:.1f} MB over {m['baseline_mb']:.0f} MB "
        f"({m['cache_entries']:,} cached, {m['bytes_per_entry']:,} B each)"
    )
    return [
        Row(
            "memory",
            label,
            value,
            target=f"< {m['bound_mb']:.0f} MB over baseline",
            status="PASS" if m["passed"] else "FAIL",
        )
    ]


def _notes(config: Config, meta: dict[str, Any], reps: int, warm_n: int) -> list[str]:
    busy = []
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    if meta["loadavg_start"] != "n/a" and float(meta["loadavg_start"].split()[0]) > 1.0:
        busy = [
            f"the machine was busy when the run started (load {meta['loadavg_start'].split()[0]}"
            f", now {load:.2f}): other processes share the cores and caches, expect noise."
        ]
    return [
        *busy,
        f"latency: thread CPU time, median of {reps} round-robin repeats; cold = "
        f"{config.tokens:,} distinct tokens per repeat (cache emptied before each), warm = one "
        f"token x {warm_n:,}; coroutines driven with coro.send(None) (no event loop timed).",
        "peers: same tokens; 'slower than' compares like for like (a FastAPI dependency with "
        "CurrentUserDep's work, a function with verify_token).",
        "end to end 'x floor' = added server CPU per request (protected - public) / floor; "
        "ratio = median over interleaved rounds of protected/public req/s.",
        "memory: VmRSS growth, tokens signed with RSA-1024 to mint fast, adjusted to "
        "RSA-2048 token length (see bench/memory_check.py).",
        f"commit {meta['commit']}; python {meta['python']}, {meta['machine']}; "
        f"load average at start {meta['loadavg_start']}"
        f", at end {meta.get('loadavg_end', 'n/a')}; minting {meta['mint_seconds']} s; "
        f"total {meta.get('seconds', 'n/a')} s.",
    ]


def write_outputs(result: BenchResult, config: Config) -> None:
    if config.results is not None:
        config.results.mkdir(parents=True, exist_ok=True)
        text = result.table + "\n\n" + "\n".join(f"- {n}" for n in result.notes) + "\n"
        (config.results / "latest.md").write_text(text)
        data = {"rows": [asdict(r) for r in result.rows], "meta": result.meta}
        (config.results / "latest.json").write_text(json.dumps(data, indent=2))
    if config.chart is not None:
        subtitle = f"one run of make bench; {result.meta['machine']}"
        write_chart(result.rows, config.chart, subtitle)


def _parse(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(description="clerk_deps benchmark: one table, one run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--httpx", action="store_true", help="use the httpx load loop, not wrk")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)
    config = Config()
    if args.quick:
        config = Config(
            tokens=200, repeats=3, warm_iterations=2000, e2e_rounds=2, e2e_seconds=1,
            memory_tokens=5000, chart=None,
        )  # fmt: skip
    config.peers = config.peers and not args.no_peers
    config.e2e = config.e2e and not args.no_e2e
    config.memory = config.memory and not args.no_memory
    config.prefer_wrk = not args.httpx
    if args.no_chart:
        config.chart = None
    return config


def main(argv: list[str] | None = None) -> None:
    config = _parse(argv)
    result = run_bench(config)
    print(result.table)
    print()
    for note in result.notes:
        print(f"- {note}")
    write_outputs(result, config)
    if config.chart is not None:
        print(f"- chart: {config.chart.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
