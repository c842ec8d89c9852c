"""The controller's inventory: one record per applied product, read back equal, written only when
it changes, forgotten on retirement."""

from __future__ import annotations

from pathlib import Path

from datamesh.control import inventory
from datamesh.control.desired import desired
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

DEMO = list(load_products(DOMAINS_DIR))


def test_records_round_trip_are_rewritten_only_on_change_and_are_forgotten(tmp_path: Path) -> None:
    by_id = {p.id: p for p in DEMO}
    movies = inventory.Applied.of(desired(by_id["studio.movies"], by_id))
    inventory.save(movies, tmp_path)
    path = inventory.directory(tmp_path) / "studio.movies.json"
    assert inventory.load_all(tmp_path) == {"studio.movies": movies}
    assert movies.database == "studio" and movies.connector == "studio-studio-cdc"
    before = path.stat().st_mtime_ns
    inventory.save(movies, tmp_path)  # the same: not written again
    assert path.stat().st_mtime_ns == before
    changed = movies.__class__(**{**movies.__dict__, "fingerprint": "0" * 16})
    inventory.save(changed, tmp_path)
    assert inventory.load_all(tmp_path)["studio.movies"].fingerprint == "0" * 16
    inventory.forget("studio.movies", tmp_path)
    assert inventory.load_all(tmp_path) == {}


def test_an_unreadable_record_is_skipped(tmp_path: Path) -> None:
    folder = inventory.directory(tmp_path)
    folder.mkdir(parents=True)
    (folder / "x.y.json").write_text("{not json")
    assert inventory.load_all(tmp_path) == {}
