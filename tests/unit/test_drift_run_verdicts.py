"""The drift checks of one run observe the mesh once (mesh_assets.drift.run_verdicts)."""

from __future__ import annotations

import pytest

from datamesh.control.drift import Verdict
from datamesh.specs.product import DataProduct
from mesh_assets import drift


def test_one_observation_per_run_and_a_new_one_for_the_next_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observed: list[int] = []

    def current(products: list[DataProduct]) -> list[Verdict]:
        observed.append(len(products))
        return [Verdict(f"d.p{len(observed)}", True, ())]

    monkeypatch.setattr(drift, "current", current)
    first = drift.run_verdicts("run-1", [])
    assert drift.run_verdicts("run-1", []) is first  # the run's other drift checks
    assert len(observed) == 1
    second = drift.run_verdicts("run-2", [])
    assert len(observed) == 2 and second is not first
    assert list(drift._RUN_VERDICTS) == ["run-2"]  # only the latest run is kept
