"""Machine tokens against session tokens, measured in one run (same method as latency.py).

    python bench/machine.py [--tokens N] [--repeats R] [--warm N]

Two comparisons, each a ratio of two rows measured round-robin:

* a cached API key (``authenticate(ak_..., accepts="api_key")``, verdict in the cache) against
  a warm session token (``verify_token`` on a repeated token, a token-cache hit);
* a JWT M2M token never seen before (``authenticate(jwt, accepts="m2m_token")``: signature and
  claims) against a cold session token (``verify_token`` on a token never seen before).

Both sides verify with the same static key (``CLERK_JWT_KEY``), so no row waits on a network;
the API key is verified once by FakeClerk on 127.0.0.1 before timing starts (one Backend API
call), then every timed call is a cache hit. ``machine_measurements`` returns the four rows
for a bench table that wants them; ``python bench/machine.py`` prints them with their ratios
and the RS256 floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from latency import Measurement, Timing, drive, floor, measure_round_robin, verify_cold, verify_warm

from clerk_deps import ClerkSettings, TokenType, authenticate
from clerk_deps.machine_verify import clear_verifiers
from clerk_deps.testing import FakeClerk, TestIssuer

__all__ = ["MachineBench", "machine_measurements", "main", "prepare"]

API_KEY_ROW = "machine: API key, cached"
SESSION_WARM_ROW = "session token, warm (repeated)"
M2M_JWT_ROW = "machine: JWT M2M token, cold (distinct)"
SESSION_COLD_ROW = "session token, cold (distinct)"


@dataclass(frozen=True)
class MachineBench:
    """What the rows need: settings trusting ``issuer``, and a verified (cached) API key."""

    issuer: TestIssuer
    settings: ClerkSettings
    api_key: str


def prepare() -> MachineBench:
    """Settings for ``TestIssuer`` keys and FakeClerk's Backend API, with one API key verified
    (so cached) by a FakeClerk served on 127.0.0.1 for that one call."""
    issuer = TestIssuer()
    clear_verifiers()
    with FakeClerk().serve() as fake:
        settings = issuer.settings(
            api_url=fake.base_url, secret_key=fake.secret_key, machine_cache_ttl=3600
        )
        api_key = fake.create_api_key("org_bench", scopes=["read"])["secret"]
        asyncio.run(authenticate(api_key, settings, accepts=TokenType.API_KEY))
        assert fake.verify_calls() == 1
    return MachineBench(issuer, settings, api_key)


def api_key_cached(bench: MachineBench, iterations: int) -> Measurement:
    """``authenticate`` on a cached API key: the verdict cache's hit path."""
    accepts = TokenType.API_KEY
    key, settings = bench.api_key, bench.settings

    def run() -> int:
        for _ in range(iterations):
            drive(authenticate(key, settings, accepts=accepts))
        return iterations

    return Measurement(API_KEY_ROW, run)


def m2m_jwt_cold(bench: MachineBench, tokens: Sequence[str]) -> Measurement:
    """``authenticate`` on JWT M2M tokens it has never seen: decode, signature, claims."""
    accepts = TokenType.M2M_TOKEN
    settings = bench.settings

    def run() -> int:
        for token in tokens:
            drive(authenticate(token, settings, accepts=accepts))
        return len(tokens)

    return Measurement(M2M_JWT_ROW, run)


def machine_measurements(
    bench: MachineBench, *, tokens: int = 200, warm_iterations: int = 5000
) -> list[Measurement]:
    """The four rows (two machine, two session references), for ``measure_round_robin``."""
    issuer = bench.issuer
    sessions = [issuer.token(f"user_{i}") for i in range(tokens)]
    machines = [issuer.m2m_token(f"mch_{i}", scopes=["mch_api"]) for i in range(tokens)]
    warm = verify_warm(bench.settings, issuer.token("user_warm"), warm_iterations)
    cold = verify_cold(bench.settings, sessions)
    return [
        api_key_cached(bench, warm_iterations),
        Measurement(SESSION_WARM_ROW, warm.run_once, warm.before_each),
        m2m_jwt_cold(bench, machines),
        Measurement(SESSION_COLD_ROW, cold.run_once, cold.before_each),
    ]


def ratios(timings: dict[str, Timing]) -> dict[str, float]:
    """Machine row / its session reference (at most 1.0 means "costs no more")."""
    return {
        f"{API_KEY_ROW} / {SESSION_WARM_ROW}": timings[API_KEY_ROW].median_us
        / timings[SESSION_WARM_ROW].median_us,
        f"{M2M_JWT_ROW} / {SESSION_COLD_ROW}": timings[M2M_JWT_ROW].median_us
        / timings[SESSION_COLD_ROW].median_us,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warm", type=int, default=5000)
    args = parser.parse_args(argv)
    bench = prepare()
    rows = machine_measurements(bench, tokens=args.tokens, warm_iterations=args.warm)
    floor_row = floor(bench.issuer.private_key.public_key(), [bench.issuer.token()] * args.tokens)
    timings = measure_round_robin([floor_row, *rows], args.repeats)
    base = timings["floor"].median_us
    print(f"{'row':<45} {'us/call':>9} {'x floor':>8}")
    for name, timing in timings.items():
        print(f"{name:<45} {timing.median_us:>9.2f} {timing.median_us / base:>8.2f}")
    for label, ratio in ratios(timings).items():
        verdict = "MET" if ratio <= 1.0 else "MISSED"
        print(f"{label}: {ratio:.2f} ({verdict}: target <= 1.00)")


if __name__ == "__main__":
    sys.exit(main())
