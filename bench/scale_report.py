"""The "Cost as the mesh grows" tables of ``bench/REPORT.md``: one table per curve, a row per
size, the figure beside its baseline from the same run, and how the cost grows (the exponent b
of cost ~ size^b between the smallest and the largest size: 1 is linear). A curve growing faster
than linearly must carry its cause (:data:`CAUSES`); :func:`unexplained` lists those that do not,
and ``tests/unit/test_bench_report.py`` fails on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SUPERLINEAR = 1.15  # above this exponent a curve needs a cause (noise on 2 shared cores ~0.1)


@dataclass(frozen=True)
class Curve:
    """``figure``/``baseline`` are patterns with ``{size}``; ``rate``: a larger figure is
    cheaper (its cost is 1 / figure)."""

    key: str
    title: str
    area: str
    sizes: tuple[tuple[str, float], ...]  # (label in the figure name, size)
    figure: str
    baseline: str | None
    size_label: str
    rate: bool = False


CURVES: tuple[Curve, ...] = (
    Curve(
        "definitions_load",
        "Dagster definitions load",
        "control_plane",
        (("10", 10), ("100", 100), ("1000", 1000)),
        "definitions_load_{size}_s",
        "load_products_{size}_s",
        "products",
    ),
    Curve(
        "noop_plan",
        "No-op `mesh plan`",
        "control_plane",
        (("10", 10), ("100", 100), ("1000", 1000)),
        "noop_plan_{size}_s",
        "raw_reads_{size}_s",
        "products",
    ),
    Curve(
        "cdc_tables",
        "CDC connector throughput (the same 80,000 inserts spread over the tables)",
        "scale",
        (("1", 1), ("4", 4), ("8", 8)),
        "cdc_{size}_tables_changes_per_s",
        "raw_decoding_{size}_tables_changes_per_s",
        "captured tables",
        rate=True,
    ),
    Curve(
        "sink_apply",
        "Iceberg sink: one batch of 1,000 changes applied to a table of",
        "scale",
        (("10k", 10_000), ("100k", 100_000), ("1m", 1_000_000)),
        "sink_apply_{size}_s",
        "parquet_rewrite_{size}_s",
        "rows",
    ),
    Curve(
        "flink_memory",
        "Flink TaskManager resident memory",
        "scale",
        (("0", 0), ("1", 1), ("3", 3)),
        "flink_tm_rss_{size}_jobs_mb",
        None,
        "running jobs",
    ),
    Curve(
        "sensor_sweep",
        "One tick of every topic sensor",
        "scale",
        (("10", 10), ("100", 100), ("500", 500)),
        "sensor_sweep_{size}_topics_ms",
        "raw_watermarks_{size}_topics_ms",
        "topics",
    ),
)

# Why a curve grows as it does, shown under its table. Required above SUPERLINEAR.
CAUSES: dict[str, str] = {
    "cdc_tables": (
        "Each captured table has its own topic, so the producer's batches (one per "
        "topic-partition) split the same changes k ways and each request carries fewer "
        "messages. Sublinear, but the first extra tables cost the most. The raw-decoding "
        "baseline moved as much within the same run, so part of each step is this shared "
        "machine."
    ),
    "sink_apply": (
        "pyiceberg writes copy-on-write: a batch rewrites every data file that holds a touched "
        "key, and a batch whose keys are spread over the whole table touches every file, so the "
        "apply costs about one rewrite of the table (compare the pyarrow rewrite beside it). "
        "Per change this grows with the table; keys clustered in time (the usual CDC pattern) "
        "or a partitioned table touch fewer files."
    ),
    "flink_memory": (
        "The idle TaskManager's heap and metaspace are paid once; each job adds its operators' "
        "buffers and Kafka clients (`flink_mb_per_job`), linear in jobs."
    ),
}


def growth(curve: Curve, figures: Mapping[str, Any]) -> float | None:
    """b in cost ~ size^b between the smallest and the largest size measured; None with fewer
    than two, or for a curve starting at size 0 (memory: read the per-job figure instead)."""
    if curve.sizes[0][1] == 0:
        return None
    sized = [(lb, s) for lb, s in curve.sizes if curve.figure.format(size=lb) in figures]
    if len(sized) < 2:
        return None
    (first, small), (last, large) = sized[0], sized[-1]
    try:
        a = float(figures[curve.figure.format(size=first)])
        b = float(figures[curve.figure.format(size=last)])
    except (TypeError, ValueError):
        return None
    if curve.rate:
        a, b = 1 / a, 1 / b
    if a <= 0 or b <= 0:
        return None
    return round(math.log(b / a) / math.log(large / small), 2)


def tables(results: Mapping[str, Any]) -> list[str]:
    """The section's markdown lines (empty when no curve has figures). Pure."""
    lines: list[str] = []
    for curve in CURVES:
        figures = results.get(curve.area) or {}
        present = [(lb, s) for lb, s in curve.sizes if curve.figure.format(size=lb) in figures]
        if not present:
            continue
        header = [curve.size_label, curve.figure.format(size="N")]
        if curve.baseline:
            header.append(f"baseline `{curve.baseline.format(size='N')}`")
        lines += ["", f"### {curve.title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for label, size in present:
            cells = [f"{size:,.0f}", f"{figures[curve.figure.format(size=label)]:,}"]
            if curve.baseline:
                cells.append(f"{figures.get(curve.baseline.format(size=label), '-'):,}")
            lines.append("| " + " | ".join(cells) + " |")
        b = growth(curve, figures)
        if b is not None:
            shape = "flat" if abs(b) < 0.15 else "linear" if abs(b - 1) < 0.15 else f"~N^{b}"
            lines += ["", f"Growth: N^{b} ({shape}{', cost per rate' if curve.rate else ''})."]
        if curve.key in CAUSES:
            lines += ["", CAUSES[curve.key]]
    return ["", "## Cost as the mesh grows", *lines] if lines else []


def unexplained(results: Mapping[str, Any], curves: Sequence[Curve] = CURVES) -> list[str]:
    """The curves growing faster than :data:`SUPERLINEAR` without a cause in :data:`CAUSES`."""
    out = []
    for curve in curves:
        b = growth(curve, results.get(curve.area) or {})
        if b is not None and b > SUPERLINEAR and curve.key not in CAUSES:
            out.append(f"{curve.key} grows as N^{b}")
    return out
