"""The bench report: generated from ``bench/results.json``, and the README's performance section
and ``bench/REPORT.md`` up to date with it."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report, scale_report
from bench.__main__ import AREAS, merge, wanted_areas
from bench.figures import COMPARISONS, FLOORS, Floor


def test_the_readme_section_is_generated_from_the_committed_results() -> None:
    results = report.load()
    readme = report.README.read_text()
    expected = report.replace_section(readme, report.summary(results))
    assert readme == expected, (
        "the README's performance section is out of date with bench/results.json: run "
        "`.venv/bin/python -m bench.report` (or `make bench`)"
    )


def test_the_report_is_generated_from_the_committed_results() -> None:
    assert report.REPORT.read_text() == report.report(report.load(), list(AREAS)), (
        "bench/REPORT.md is out of date with bench/results.json: run "
        "`.venv/bin/python -m bench.report` (or `make bench`)"
    )


FIGURES = {
    "noop_plan_1000_s": 6.5,
    "raw_reads_1000_s": 6.0,
    "ratio_vs_raw_reads_1000": 0.923,
    "noop_apply_1000_s": 3.0,
    "ratio_vs_something_new": 1.5,
}


def test_rows_fold_baselines_and_ratios_beside_their_figure() -> None:
    rows = {r.figure: r for r in report.rows("control_plane", FIGURES)}
    # the baseline and its ratio are shown beside the figure, not on rows of their own
    assert list(rows) == ["noop_plan_1000_s", "noop_apply_1000_s", "ratio_vs_something_new"]
    assert rows["noop_plan_1000_s"].baselines == (("raw_reads_1000_s", 6.0, 0.923),)
    assert rows["noop_plan_1000_s"].floor == FLOORS[("control_plane", "noop_plan_1000_s")]
    # a ratio the table does not know stays visible as it is
    assert rows["ratio_vs_something_new"].value == 1.5 and not rows["noop_apply_1000_s"].headline


def test_one_figure_may_have_several_baselines() -> None:
    figures = {
        "changes_per_s": 100_000,
        "raw_decoding_changes_per_s": 200_000,
        "ratio_vs_raw_decoding": 0.5,
        "raw_producer_msgs_per_s": 400_000,
        "ratio_vs_raw_producer": 0.25,
    }
    (row,) = report.rows("cdc", figures)
    assert row.baselines == (
        ("raw_decoding_changes_per_s", 200_000, 0.5),
        ("raw_producer_msgs_per_s", 400_000, 0.25),
    )


@pytest.mark.parametrize(
    ("floor", "measured", "met"),
    [
        (Floor("below", 5.0, "x"), 4.99, True),
        (Floor("below", 5.0, "x"), 5.0, False),
        (Floor("above", 10_000, "x"), 10_000, True),
        (Floor("above", 10_000, "x"), 9_999, False),
    ],
)
def test_floors(floor: Floor, measured: float, met: bool) -> None:
    assert floor.met(measured) is met


def test_a_missed_floor_is_marked_and_reported() -> None:
    assert report.missed("control_plane", FIGURES) == [
        "noop_plan_1000_s = 6.5, floor < 5 (issue 12)"
    ]
    text = report.report({"control_plane": FIGURES}, ["control_plane", "cdc"])
    assert (
        "| `noop_plan_1000_s` | 6.5 | raw_reads_1000_s = 6.0 | 0.923 | < 5 (issue 12): **MISSED** |"
        in text
    )
    assert "No figures in `bench/results.json` for: cdc" in text
    assert report.missed("control_plane", {**FIGURES, "noop_plan_1000_s": 2.9}) == []


def test_the_machine_facts_are_in_the_report_and_the_summary() -> None:
    facts: dict[str, Any] = {
        "cores": 2,
        "memory_gb": 23.5,
        "os": "Linux-6",
        "python": "3.11.7",
        "java": "17.0.15",
        "kafka": "4.1.1",
        "flink": "2.2.1",
        "postgresql": "15.18",
    }
    results = {"control_plane": FIGURES, "machine": facts, "measured": {"control_plane": "now"}}
    line = (
        "2 cores, 23.5 GB memory, Linux-6, Python 3.11.7, Java 17.0.15, Kafka 4.1.1, "
        "Flink 2.2.1, PostgreSQL 15.18"
    )
    assert line in report.report(results, ["control_plane"])
    assert line in report.summary(results)
    assert report.areas(results) == ["control_plane"]  # machine and measured are not areas


def test_a_subset_run_keeps_the_other_areas() -> None:
    previous = {"cdc": {"a": 1}, "sink": {"b": 2}, "measured": {"cdc": "d1", "sink": "d1"}}
    merged = merge(previous, {"sink": {"b": 3}}, {"sink": "d2"}, {"cores": 2})
    assert merged == {
        "cdc": {"a": 1},
        "sink": {"b": 3},
        "measured": {"cdc": "d1", "sink": "d2"},
        "machine": {"cores": 2},
    }


def test_areas_are_named_by_comma_or_space_and_checked() -> None:
    assert wanted_areas([]) == list(AREAS)
    assert wanted_areas(["cdc,sink"]) == ["cdc", "sink"]
    assert wanted_areas(["registry", "sensor"]) == ["registry", "sensor"]
    with pytest.raises(SystemExit, match=r"unknown bench area.*sinks: use registry"):
        wanted_areas(["cdc,sinks"])


def test_every_comparison_and_floor_names_a_bench_area() -> None:
    named = {area for area, _ in COMPARISONS} | {area for area, _ in FLOORS}
    assert named <= set(AREAS), named - set(AREAS)


def test_the_readme_needs_both_markers() -> None:
    with pytest.raises(ValueError, match="bench:begin"):
        report.replace_section("# no markers\n", "x")


def _curve_figures(curve: scale_report.Curve, values: tuple[float, ...]) -> dict[str, float]:
    return {curve.figure.format(size=lb): v for (lb, _), v in zip(curve.sizes, values, strict=True)}


SENSOR = next(c for c in scale_report.CURVES if c.key == "sensor_sweep")  # 10 / 100 / 500
CDC = next(c for c in scale_report.CURVES if c.key == "cdc_tables")  # 1 / 4 / 8, a rate


@pytest.mark.parametrize(
    ("curve", "values", "expected"),
    [
        (SENSOR, (5.0, 50.0, 250.0), 1.0),  # 50x the topics, 50x the time
        (SENSOR, (5.0, 5.0, 5.0), 0.0),
        (SENSOR, (1.0, 100.0, 2500.0), 2.0),
        (CDC, (1000.0, 800.0, 500.0), 0.33),  # half the rate over 8x tables: cost ~ k^(1/3)
        (CDC, (1000.0, 1000.0, 1000.0), 0.0),
    ],
    ids=["linear", "flat", "quadratic", "rate-halving", "rate-flat"],
)
def test_growth_is_the_exponent_between_the_smallest_and_largest_size(
    curve: scale_report.Curve, values: tuple[float, ...], expected: float
) -> None:
    assert scale_report.growth(curve, _curve_figures(curve, values)) == expected


def test_a_superlinear_curve_without_a_cause_is_named() -> None:
    quadratic = {"scale": _curve_figures(SENSOR, (1.0, 100.0, 2500.0))}
    assert scale_report.unexplained(quadratic) == ["sensor_sweep grows as N^2.0"]
    linear = {"scale": _curve_figures(SENSOR, (5.0, 50.0, 250.0))}
    assert scale_report.unexplained(linear) == []
    explained = {**scale_report.CAUSES, "sensor_sweep": "a cause"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scale_report, "CAUSES", explained)
        assert scale_report.unexplained(quadratic) == []


def test_the_scale_tables_show_each_size_beside_its_baseline_and_the_growth() -> None:
    figures = _curve_figures(SENSOR, (5.0, 50.0, 250.0))
    figures |= {SENSOR.baseline.format(size=lb): 1.5 for lb, _ in SENSOR.sizes if SENSOR.baseline}
    text = "\n".join(scale_report.tables({"scale": figures}))
    assert "## Cost as the mesh grows" in text and "### One tick of every topic sensor" in text
    assert "| 500 | 250.0 | 1.5 |" in text and "Growth: N^1.0 (linear)." in text


def test_every_committed_curve_that_grows_faster_than_linearly_says_why() -> None:
    assert scale_report.unexplained(report.load()) == []


def test_a_floor_on_a_ratio_judges_the_ratio_beside_its_figure() -> None:
    cdc = {
        "changes_per_s": 51_000,
        "raw_decoding_changes_per_s": 150_000,
        "ratio_vs_raw_decoding": 0.34,
    }
    (row,) = [r for r in report.rows("cdc", cdc) if r.figure == "changes_per_s"]
    assert (row.floor, row.judged) == (FLOORS[("cdc", "ratio_vs_raw_decoding")], 0.34)
    assert report.missed("cdc", cdc) == ["changes_per_s = 0.34, floor >= 0.4 (issue 4)"]
    assert report.missed("cdc", {**cdc, "ratio_vs_raw_decoding": 0.5}) == []
