"""In-process unit tests of the SQLite store and the registry service (no server)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from datamesh.registry.errors import RegistryError
from datamesh.registry.parsing import parse_schema
from datamesh.registry.service import Registry
from datamesh.registry.store import DB_FILE, Store, Tx

from .helpers import field, record


def test_pragmas_make_commits_durable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        with sqlite3.connect(tmp_path / DB_FILE) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # synchronous is per connection: ask the store's own one (2 = FULL).
        assert store.read(lambda tx: tx._conn.execute("PRAGMA synchronous").fetchone()[0]) == 2
    finally:
        store.close()


def test_error_inside_write_rolls_everything_back(tmp_path: Path) -> None:
    store = Store(tmp_path)

    def half_done(tx: Tx) -> None:
        schema_id = tx.add_schema("canon", '"int"')
        tx.add_version("s", 1, schema_id)
        raise RegistryError(409, 409, "refused after writing")

    with pytest.raises(RegistryError):
        store.write(half_done)
    assert store.read(lambda tx: (tx.subjects(True), tx.schema_id_for("canon"))) == ([], None)
    store.close()


def test_state_survives_reopen_and_ids_are_not_reused(tmp_path: Path) -> None:
    registry = Registry(Store(tmp_path))
    first = registry.register("a", parse_schema(record(field("x", "int"), name="A")))
    registry.delete_subject("a", permanent=False)
    registry.delete_subject("a", permanent=True)
    registry.store.close()

    reopened = Registry(Store(tmp_path))
    assert reopened.schema_text(first)  # the id still resolves after the subject is gone
    second = reopened.register("b", parse_schema(record(field("y", "int"), name="B")))
    assert second == first + 1
    reopened.store.close()


def test_register_is_idempotent_and_checks_compatibility(tmp_path: Path) -> None:
    registry = Registry(Store(tmp_path))
    v1 = parse_schema(record(field("x", "int"), name="A"))
    v2 = parse_schema(record(field("x", "int"), field("y", "int"), name="A"))
    schema_id = registry.register("s", v1)
    assert registry.register("s", v1) == schema_id
    assert registry.versions("s", include_deleted=False) == [1]
    with pytest.raises(RegistryError) as caught:
        registry.register("s", v2)
    assert caught.value.error_code == 409
    assert registry.versions("s", include_deleted=True) == [1]
    registry.store.close()


def test_bad_data_dir_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((RegistryError, OSError)):
        Store(blocker)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / DB_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryError) as caught:
        Store(tmp_path / "dir")
    assert caught.value.error_code == 50001
