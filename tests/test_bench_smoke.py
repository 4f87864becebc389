"""The bench at tiny sizes, so that it cannot rot. Nothing about timing is asserted: only that
one table comes out with every row, a ratio to the floor for each figure, and a status for
each row that has a target."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def run() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(BENCH))


def test_a_tiny_run_prints_every_row(run: ModuleType) -> None:
    config = run.Config(
        tokens=12, repeats=1, warm_iterations=20, propagation_samples=3, peers=False, results=None
    )
    result = run.run_bench(config)

    by_label = {row.label: row for row in result.rows}
    assert list(by_label)[:4] == [
        "floor: cryptography RS256 verify",
        "RS256 check as verify_token makes it (reference)",
        "verify_token, cold (v2 token with organization)",
        "verify_token, warm (repeated token)",
    ]
    assert by_label["floor: cryptography RS256 verify"].ratio == 1.0
    assert by_label["RS256 check as verify_token makes it (reference)"].target == ""
    targeted = ["route, environment, repeated token(s)", "route, environment, distinct token(s)"]
    for label in [*list(by_label)[2:4], *targeted]:
        row = by_label[label]
        assert row.ratio is not None, label  # may be negative at tiny sizes: noise
        assert row.target.startswith("<= ") and row.status in {"MET", "MISSED"}, label
    assert {row.section for row in result.rows} == {
        "verify", "machine", "revocation", "route", "peers", "memory",
    }  # fmt: skip
    assert sum(row.section == "route" for row in result.rows) == 7
    assert all(
        row.value == "not measured: disabled" for row in result.rows if row.section == "peers"
    )
    assert "KiB per token" in by_label["verified-token cache (default 10,000 tokens)"].value
    for row in result.rows:
        assert row.target == "" or row.target in result.table
        assert row.label in result.table
    assert len(result.table.splitlines()) == len(result.rows) + 2  # header, rule, one per row
    assert "load average at start" in result.notes[0]


def test_missing_rows_keep_their_target(run: ModuleType) -> None:
    import harness

    row = harness.missing_row("machine", "API key", "needs clerk_deps.machine", 0.12)
    assert (row.value, row.target, row.status) == (
        "not measured: needs clerk_deps.machine",
        "<= 0.12x",
        "",
    )
    met = harness.timed_row("verify", "cold", 40.0, 25.0, 2.0)
    missed = harness.timed_row("verify", "cold", 60.0, 25.0, 2.0)
    assert (met.ratio, met.status, missed.status) == (1.6, "MET", "MISSED")


def test_profile_runs(run: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    run.profile(run.Config(tokens=3, warm_iterations=5))
    out = capsys.readouterr().out
    assert "cProfile, cold" in out and "cProfile, warm" in out
