"""The one table: rows, ratios to the floor, the issue's targets, and the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    section: str
    label: str
    value: str  # the figure, formatted, or why there is none
    ratio: float | None = None  # the figure as a multiple of the floor
    target: str = ""
    status: str = ""  # MET / MISSED / PASS / FAIL / ""
    us: float | None = None  # latency rows: microseconds per verification (for the chart)

    @property
    def ratio_text(self) -> str:
        return "" if self.ratio is None else f"{self.ratio:.2f}x"


def latency_row(
    section: str,
    label: str,
    us: float | None,
    floor_us: float,
    *,
    reason: str = "",
    target: str = "",
    status: str = "",
) -> Row:
    if us is None:
        return Row(section, label, f"not measured: {reason}")
    return Row(section, label, f"{us:,.1f} us", us / floor_us, target, status, us)


def met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def format_table(rows: Sequence[Row], title: str = "") -> str:
    headers = ("", "measurement", "value", "x floor", "target", "status")
    body = [
        (row.section, row.label, row.value, row.ratio_text, row.target, row.status) for row in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [title, ""] if title else []
    out += [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    return "\n".join(out)


def write_chart(rows: Sequence[Row], path: Path, subtitle: str = "") -> Path:
    """A horizontal bar chart of microseconds per verification for every latency row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [row for row in rows if row.us is not None]
    labels = [row.label for row in bars][::-1]
    values = [row.us or 0.0 for row in bars][::-1]
    ratios = [row.ratio_text for row in bars][::-1]
    colors = [_color(row.label) for row in bars][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(bars) + 1.6), dpi=110)
    ax.barh(labels, values, color=colors)
    top = max(values) if values else 1.0
    for y, (value, ratio) in enumerate(zip(values, ratios, strict=True)):
        ax.text(value + top * 0.01, y, f"{value:,.1f} us ({ratio})", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("microseconds per verification (lower is better)")
    ax.set_title("Session token verification latency" + (f"\n{subtitle}" if subtitle else ""))
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _color(label: str) -> str:
    if label.startswith("floor"):
        return "#7f7f7f"
    if label.startswith("clerk_deps"):
        return "#2ca02c"
    return "#d62728"
