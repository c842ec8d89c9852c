"""``bench/REPORT.md`` and the README's performance section, generated from
``bench/results.json`` — never written by hand.

``results.json`` holds ``{"<area>": {"<figure>_<unit>": value, "ratio_vs_<baseline>": v, ...},
"machine": {...facts of the last run...}, "measured": {"<area>": "<when>"}}``. Each figure is
shown with its baselines and their ratios (:data:`bench.figures.COMPARISONS`) and its floor
(:data:`bench.figures.FLOORS`), met or MISSED. The README's section between
:data:`BEGIN` and :data:`END` is :func:`summary` (the figures with a baseline or a floor);
``tests/unit/test_bench_report.py`` fails when it, or ``REPORT.md``, is out of date with
``results.json``.

``python -m bench.report`` regenerates both from ``results.json`` without measuring anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import scale_report
from bench.figures import COMPARISONS, FLOORS, Floor

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"
REPORT = BENCH_DIR / "REPORT.md"
README = BENCH_DIR.parent / "README.md"
BEGIN = "<!-- bench:begin (generated from bench/results.json by bench/report.py) -->"
END = "<!-- bench:end -->"
RESERVED = frozenset({"machine", "measured"})  # keys of results.json that are not areas
MACHINE_FACTS = (
    ("cores", "cores"),
    ("memory_gb", "GB memory"),
    ("os", ""),
    ("python", "Python"),
    ("java", "Java"),
    ("kafka", "Kafka"),
    ("flink", "Flink"),
    ("postgresql", "PostgreSQL"),
)


@dataclass(frozen=True)
class Row:
    """One figure: its value, its baselines ``(name, value, ratio)`` and its floor; a floor
    set on one of its ratios (``at least 40% of raw decoding``) applies to that ratio
    (``floored``), else to the value."""

    figure: str
    value: Any
    baselines: tuple[tuple[str, Any, Any], ...] = ()
    floor: Floor | None = None
    floored: Any = None

    @property
    def judged(self) -> Any:
        """What the floor is checked against."""
        return self.value if self.floored is None else self.floored

    @property
    def headline(self) -> bool:
        """Compared with something: a baseline or a floor."""
        return bool(self.baselines) or self.floor is not None


def rows(area: str, figures: Mapping[str, Any]) -> list[Row]:
    """The rows of ``area``: every figure once, in the area's order; a baseline and a ratio
    known to :data:`COMPARISONS` are shown beside their figure instead of on rows of their own.
    Pure."""
    compared: dict[str, list[tuple[str, Any, Any]]] = {}
    ratio_floors: dict[str, tuple[Floor, Any]] = {}
    folded: set[str] = set()
    for (where, ratio), (figure, baseline) in COMPARISONS.items():
        if where == area and ratio in figures and figure in figures:
            compared.setdefault(figure, []).append(
                (baseline, figures.get(baseline, "-"), figures[ratio])
            )
            folded.update({ratio, baseline})
            if (area, ratio) in FLOORS:
                ratio_floors[figure] = (FLOORS[(area, ratio)], figures[ratio])
    out = []
    for name, value in figures.items():
        if name in folded and name not in compared:
            continue
        floor, floored = ratio_floors.get(name, (FLOORS.get((area, name)), None))
        out.append(Row(name, value, tuple(compared.get(name, ())), floor, floored))
    return out


def number(value: Any) -> str:
    """A figure for a table: thousands separated, strings as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}"


def _floor(row: Row) -> str:
    if row.floor is None:
        return ""
    met = isinstance(row.judged, int | float) and row.floor.met(row.judged)
    what = "ratio " if row.floored is not None else ""
    return f"{what}{row.floor.text()} ({row.floor.source}): {'met' if met else '**MISSED**'}"


def _cells(row: Row) -> tuple[str, str, str, str, str]:
    baselines = "<br>".join(f"{n} = {number(v)}" for n, v, _ in row.baselines)
    ratios = "<br>".join(number(r) for _, _, r in row.baselines)
    return f"`{row.figure}`", number(row.value), baselines, ratios, _floor(row)


def _table(lines: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines]


def areas(results: Mapping[str, Any]) -> list[str]:
    """The measured areas of ``results``, in its order."""
    return [k for k, v in results.items() if k not in RESERVED and isinstance(v, dict)]


def machine_line(results: Mapping[str, Any]) -> str:
    """``2 cores, 23.5 GB memory, Linux-..., Python 3.11.7, ...`` of the last run."""
    facts = results.get("machine") or {}
    if not facts:
        return "not recorded (these figures predate the report)"
    parts = []
    for key, label in MACHINE_FACTS:
        if key in facts:
            value = number(facts[key])
            parts.append(
                f"{value} {label}" if key in ("cores", "memory_gb") else f"{label} {value}".strip()
            )
    return ", ".join(parts)


def report(results: Mapping[str, Any], known: Sequence[str]) -> str:
    """The whole ``bench/REPORT.md``; ``known``: every area ``make bench`` can run. Pure."""
    measured = results.get("measured") or {}
    lines = [
        "# Benchmark report",
        "",
        "Generated from `bench/results.json` by `bench/report.py`: `make bench` measures every "
        "area and rewrites both, `make bench AREAS=cdc,sink` measures those areas and keeps the "
        "others' figures. Do not edit by hand.",
        "",
        f"Machine of the last run: {machine_line(results)}.",
        "",
        "Each baseline ran in the same run as its figure, against the same services. A ratio is "
        "the area's own (`bench/figures.py` names the pair, the area's module the direction): "
        "above 1 the platform is faster than its baseline — except in `checks`, where it counts "
        "how many baseline reads one evaluation costs. Floors are the ones the issues set "
        "(`FLOORS` in `bench/figures.py`).",
    ]
    for area in areas(results):
        when = measured.get(area, "before run dates were recorded")
        lines += ["", f"## {area}", "", f"Measured: {when}.", ""]
        lines += _table(
            [_cells(r) for r in rows(area, results[area])],
            ("figure", "value", "baseline (same run)", "ratio", "floor"),
        )
    lines += scale_report.tables(results)
    missing = [a for a in known if a not in areas(results)]
    if missing:
        lines += [
            "",
            "## Not measured yet",
            "",
            f"No figures in `bench/results.json` for: {', '.join(missing)} "
            f"(`make bench AREAS={','.join(missing)}`).",
        ]
    return "\n".join(lines) + "\n"


def summary(results: Mapping[str, Any]) -> str:
    """The README's performance section: every figure with a baseline or a floor. Pure."""
    found = [
        (f"{area}", *_cells(r))
        for area in areas(results)
        for r in rows(area, results[area])
        if r.headline
    ]
    lines = [
        f"Machine of the last run: {machine_line(results)}. Every figure, and how each was "
        "measured: "
        "[bench/REPORT.md](bench/REPORT.md).",
        "",
        *_table(found, ("area", "figure", "value", "baseline (same run)", "ratio", "floor")),
    ]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` (the README) with what lies between :data:`BEGIN` and :data:`END` replaced."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {BEGIN!r} ... {END!r} section: add both markers")
    return text[: start + len(BEGIN)] + "\n" + section + text[end:]


def write(results: Mapping[str, Any], known: Sequence[str]) -> None:
    """Write ``bench/REPORT.md`` and the README's section from ``results``."""
    REPORT.write_text(report(results, known))
    README.write_text(replace_section(README.read_text(), summary(results)))


def missed(area: str, figures: Mapping[str, Any]) -> list[str]:
    """``<figure> = <value>, floor <floor>`` for each floor of ``area`` its figures miss."""
    return [
        f"{r.figure} = {number(r.judged)}, floor {r.floor.text()} ({r.floor.source})"
        for r in rows(area, figures)
        if r.floor is not None and not (isinstance(r.judged, int | float) and r.floor.met(r.judged))
    ]


def load(path: Path = RESULTS) -> dict[str, Any]:
    """``results.json`` (``{}`` when there is none)."""
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(found, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(found).__name__}")
    return found


def main() -> int:
    """``python -m bench.report``: regenerate REPORT.md and the README section."""
    from bench.__main__ import AREAS

    write(load(), list(AREAS))
    print(f"wrote {REPORT} and the performance section of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
