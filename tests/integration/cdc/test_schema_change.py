"""Schema changes: a compatible one registers the next version and flows; an incompatible one
pauses only its table, names the column and the fix, and loses nothing once fixed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import requests

from datamesh import names
from tests.integration.cdc.conftest import DOMAIN, RunningConnector, SourceDb, TopicReader

pytestmark = pytest.mark.integration


def _versions(registry: str, subject: str) -> list[int]:
    response = requests.get(f"{registry}/subjects/{subject}/versions", timeout=10)
    response.raise_for_status()
    return list(response.json())


def test_compatible_then_incompatible_change(
    source_db: SourceDb,
    connector: Callable[..., RunningConnector],
    reader: TopicReader,
    endpoints: dict[str, str],
) -> None:
    suffix = uuid.uuid4().hex[:8]
    movies, other = f"public.movies_{suffix}", f"public.other_{suffix}"
    for table in (movies, other):
        source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, title text)")
        source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    run = connector((movies, other), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    topic = f"{DOMAIN}.{movies}"
    registry = endpoints["schema_registry"]

    source_db.sql(f"INSERT INTO {movies} VALUES (1, 'one')")
    source_db.sql(f"ALTER TABLE {movies} ADD COLUMN rating int")  # compatible: optional field
    source_db.sql(f"INSERT INTO {movies} VALUES (2, 'two', 5)")
    run.wait_caught_up(source_db)
    assert _versions(registry, names.value_subject(topic)) == [1, 2]
    assert [v["after"] for _, v in reader.read(topic)] == [
        {"id": 1, "title": "one"},
        {"id": 2, "title": "two", "rating": 5},
    ]

    source_db.sql(f"ALTER TABLE {movies} ALTER COLUMN title TYPE int USING length(title)")
    source_db.sql(f"INSERT INTO {movies} VALUES (3, 42, 1)")
    source_db.sql(f"INSERT INTO {other} VALUES (10, 'flows')")
    status = run.wait_status(lambda s: s["state"] == "paused", "the movies table to pause")
    error = status["tables"][movies]["paused"]
    assert f"table {movies}" in error and "changed column(s): title" in error
    assert f"PUT /config/{names.value_subject(topic)}" in error and "resumes by itself" in error
    assert status["tables"][other]["paused"] is None
    run.wait_status(lambda s: s["tables"][other]["events"] >= 1, "the other table to flow")
    assert [k["id"] for k, _ in reader.read(f"{DOMAIN}.{other}")] == [10]
    assert [k["id"] for k, _ in reader.read(topic)] == [1, 2]

    # the owner migrates consumers and relaxes the subject: the paused table resumes, no loss
    requests.put(
        f"{registry}/config/{names.value_subject(topic)}",
        json={"compatibility": "NONE"},
        timeout=10,
    ).raise_for_status()
    run.wait_status(lambda s: s["state"] == "streaming", "the table to resume")
    run.wait_caught_up(source_db)
    events = reader.read(topic)
    assert events[-1][1]["after"] == {"id": 3, "title": 42, "rating": 1}
    assert {k["id"] for k, _ in reader.read(f"{DOMAIN}.{other}")} == {10}  # maybe repeated
    assert "replaying from" in run.log.read_text()
