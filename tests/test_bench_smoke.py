"""The bench's own code at tiny sizes, so it cannot rot. No timing is asserted: only that one
table comes out with every row, and a ratio to the floor for every latency figure."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_modules() -> Iterator[tuple[Any, Any, Any]]:
    sys.path.insert(0, str(BENCH))
    try:
        import loadtest
        import report
        import run

        yield run, loadtest, report
    finally:
        sys.path.remove(str(BENCH))


def test_tiny_run_produces_the_whole_table(bench_modules: tuple[Any, Any, Any]) -> None:
    run, _, _ = bench_modules
    config = run.Config(
        tokens=20,
        repeats=2,
        warm_iterations=50,
        peers=False,
        e2e=False,
        memory=False,
        chart=None,
        results=None,
    )
    result = run.run_bench(config)

    labels = [row.label for row in result.rows]
    assert labels[:5] == [
        "floor: cryptography RS256 verify",
        "clerk_deps verify_token, cold (distinct)",
        "clerk_deps verify_token, warm (repeated)",
        "clerk_deps CurrentUserDep, cold",
        "clerk_deps CurrentUserDep, warm",
    ]
    assert {row.section for row in result.rows} == {"latency", "peers", "end to end", "memory"}
    latency = [row for row in result.rows if row.section == "latency"]
    assert all(row.ratio is not None and row.ratio > 0 for row in latency)
    assert latency[0].ratio == 1.0
    assert {row.status for row in latency[1:3]} <= {"MET", "MISSED"}
    skipped = [row for row in result.rows if row.section != "latency"]
    assert len(skipped) == 3 + 4 + 1
    assert all(row.value == "not measured: disabled" for row in skipped)
    for row in result.rows:
        assert row.label in result.table
    assert result.table.count("\n| ") == len(result.rows) + 1  # header + one line per row


def test_wrk_summary_line_is_parsed(bench_modules: tuple[Any, Any, Any]) -> None:
    _, loadtest, _ = bench_modules
    output = (
        "Running 2s test\n"
        "BENCH requests=1234 duration_us=2000000 status=1 connect=0 read=2 write=0 timeout=0 "
        "wrapped=1\n"
    )
    assert loadtest.parse_wrk_output(output) == (1234, 2.0, 3, True)
    assert loadtest.tokens_per_round(1000.0, 2, 16) == 2616


def test_chart_is_written(bench_modules: tuple[Any, Any, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _, _, report = bench_modules
    rows = [
        report.latency_row("latency", "floor: x", 50.0, 50.0),
        report.latency_row("latency", "clerk_deps cold", 80.0, 50.0),
        report.latency_row("peers", "peer", None, 50.0, reason="not installed"),
    ]
    path = report.write_chart(rows, tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
