"""Pause records and deployed input schemas: one atomic JSON file per product under MESH_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh import endpoints, pauses
from datamesh.flink import deployed_inputs
from datamesh.flink.deployed_inputs import InputSchema

PAUSE = pauses.Pause(
    "studio.movie_catalog",
    "studio.movies",
    ("status",),
    "drop column studio.movies.status",
    ("team:studio-eng",),
    "mesh_assets/domains/studio/products.yaml",
    7,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.MESH_HOME_VAR, str(tmp_path))
    return tmp_path


def test_a_pause_is_one_file_per_product_and_reads_back_equal(home: Path) -> None:
    assert pauses.load(PAUSE.product) is None and pauses.all_paused() == {}
    pauses.save(PAUSE)
    assert endpoints.pause_file(PAUSE.product) == home / "paused" / "studio.movie_catalog.json"
    assert pauses.load(PAUSE.product) == PAUSE
    assert pauses.all_paused() == {PAUSE.product: PAUSE}
    assert [p.name for p in (home / "paused").iterdir()] == ["studio.movie_catalog.json"]
    pauses.remove(PAUSE.product)
    pauses.remove(PAUSE.product)  # nothing to remove: no error
    assert pauses.load(PAUSE.product) is None


def test_a_pause_says_what_broke_whom_and_how_it_resumes() -> None:
    stopping = PAUSE.describe()
    assert "(stopping)" in stopping
    text = pauses.Pause(**{**PAUSE.to_json(), "savepoint": "file:/sp/1"}).describe()
    assert text == (
        "drop column studio.movies.status breaks studio.movie_catalog (consumes status; owners "
        "team:studio-eng): its pipeline is paused (stopped with savepoint file:/sp/1); it "
        "resumes from there once mesh_assets/domains/studio/products.yaml no longer uses status "
        "or the change to studio.movies is reverted"
    )


def test_deployed_input_schemas_read_back_equal(home: Path) -> None:
    assert deployed_inputs.load("studio.movie_catalog") is None
    schema = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
    inputs = {"studio.movies": InputSchema("studio.public.movies-value", 3, 2, schema)}
    deployed_inputs.save("studio.movie_catalog", inputs)
    assert deployed_inputs.load("studio.movie_catalog") == inputs
    assert endpoints.deployed_inputs_file("studio.movie_catalog").parent == home / "deployed-inputs"
