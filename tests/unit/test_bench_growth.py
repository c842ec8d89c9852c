"""The growth exponent the scale table of bench/REPORT.md reports for each cost curve."""

from __future__ import annotations

import pytest

from bench import scale_bench


def _figures(
    cdc: tuple[float, float], sink: tuple[float, float], sensor: tuple[float, float]
) -> dict[str, float]:
    """Figures at the smallest and largest size of each curve (the middle ones are ignored)."""
    out: dict[str, float] = {}
    for (_, points), (low, high) in zip(
        scale_bench.CURVES.values(), (cdc, sink, sensor), strict=True
    ):
        sizes = sorted(points)
        for size in sizes:
            out[points[size]] = low if size == sizes[0] else high
    return out


@pytest.mark.parametrize(
    ("cdc", "sink", "sensor", "expected"),
    [
        # a rate that stays put is a flat cost; costs in proportion to size are linear
        ((1000.0, 1000.0), (0.1, 10.0), (5.0, 250.0), (0.0, 1.0, 1.0)),
        # a rate halving over 8x the tables: cost ~ k^(1/3); a sink cost flat in rows
        ((1000.0, 500.0), (2.0, 2.0), (5.0, 5.0), (0.333, 0.0, 0.0)),
        # quadratic sweep time: 50x the topics, 2500x the time
        ((1000.0, 1000.0), (0.1, 10.0), (1.0, 2500.0), (0.0, 1.0, 2.0)),
    ],
    ids=["flat-linear-linear", "sublinear-flat-flat", "quadratic-sensor"],
)
def test_growth_is_the_exponent_between_the_smallest_and_largest_size(
    cdc: tuple[float, float],
    sink: tuple[float, float],
    sensor: tuple[float, float],
    expected: tuple[float, float, float],
) -> None:
    growth = scale_bench.growth(_figures(cdc, sink, sensor))
    assert tuple(growth[f"growth_{curve}"] for curve in scale_bench.CURVES) == expected
