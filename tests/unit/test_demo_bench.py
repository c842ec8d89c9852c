"""The demo area's run figures: which run starts the streaming products, which are sink runs."""

from __future__ import annotations

from typing import Any

import pytest

from bench.demo_bench import run_figures


def _run(
    assets: list[str],
    created: float,
    started: float | None,
    ended: float | None,
    steps: tuple[tuple[float, float], ...] = (),
) -> dict[str, Any]:
    return {
        "status": "SUCCESS" if ended else "STARTING",
        "creationTime": created,
        "startTime": started,
        "endTime": ended,
        "assetSelection": [{"path": a.split("/")} for a in assets],
        "stepStats": [
            {"stepKey": f"s{i}", "startTime": a, "endTime": b} for i, (a, b) in enumerate(steps)
        ],
    }


STREAMING = {"studio/movies", "content/localized_titles"}


def test_the_start_run_is_the_first_finished_run_of_a_streaming_product() -> None:
    found = [
        _run(
            ["studio/movies", "content/localized_titles"],
            100,
            107,
            160,
            steps=((107, 110), (110, 140)),
        ),
        _run(["studio/movies_history"], 120, 130, 134),
        _run(["analytics/talent_credits"], 125, 141, 145),
        _run(["studio/movies_history"], 150, 162, 166),
        _run(["content/title_catalog"], 170, None, None),  # still starting: not counted
    ]
    figures = run_figures(found, STREAMING)
    assert figures["start_run_s"] == 60.0
    assert figures["start_run_steps_s"] == 33.0
    assert figures["ratio_vs_start_run_steps"] == pytest.approx(33 / 60, abs=1e-3)
    assert figures["sink_runs_count"] == 3
    assert figures["sink_run_launch_median_s"] == 12.0  # launches of 10, 16 and 12 s
    assert figures["sink_run_median_s"] == 4.0


def test_no_finished_run_gives_no_run_figure() -> None:
    assert run_figures([_run(["studio/movies"], 100, 105, None)], STREAMING) == {}
