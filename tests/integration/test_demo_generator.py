"""The demo generator as ``mesh demo`` runs it: a background process writing inserts, updates,
deletes and the scheduled ADD COLUMNs into the demo's real PostgreSQL databases; its record
under ``MESH_HOME``; ``mesh demo --stop`` ends it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from datamesh import endpoints
from datamesh.demo import database_dsn, generator
from datamesh.demo.changes import SCHEMA_CHANGES
from datamesh.polling import poll
from datamesh.process import alive
from tests.integration.demo_state import reset_demo

pytestmark = pytest.mark.integration
MESH = str(Path(sys.executable).parent / "mesh")


@pytest.fixture
def demo_databases(mesh_stack: object) -> Iterator[str]:
    """Fresh demo databases (seeded by ``mesh demo``'s loader); dropped afterwards."""
    reset_demo()
    yield endpoints.endpoint("postgres")
    generator.stop()
    reset_demo()


def _mesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESH, *args], capture_output=True, text=True, timeout=120)


def _counts(server: str) -> dict[str, int]:
    out = {}
    for db, tables in (("studio", ("movies", "productions", "talent")), ("content", ("artwork",))):
        with psycopg2.connect(database_dsn(server, db)) as conn, conn.cursor() as cur:
            for table in tables:
                cur.execute(f"SELECT count(*), coalesce(max(id), 0) FROM public.{table}")
                count, top = cur.fetchone()
                out[table], out[f"{table}_max_id"] = int(count), int(top)
        conn.close()
    return out


def _columns(server: str, database: str, table: str) -> set[str]:
    with psycopg2.connect(database_dsn(server, database)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        )
        found = {str(r[0]) for r in cur.fetchall()}
    conn.close()
    return found


def test_mesh_demo_writes_changes_in_the_background_until_stopped(demo_databases: str) -> None:
    bad = _mesh("demo", "--rate", "fast")
    assert bad.returncode == 1 and "--rate 'fast' is not a rate" in bad.stderr
    assert generator.info() is None  # a bad rate starts nothing

    started = _mesh("demo", "--rate", "100/s", "--schema-every", "2")
    assert started.returncode == 0, started.stderr
    assert "demo generator writing 100/s" in started.stdout
    info = generator.info()
    assert info is not None and info["rate"] == "100/s" and alive(info["pid"])
    seeded = _counts(demo_databases)

    # every scheduled schema change lands (one per 2 s), while rows keep changing
    def all_columns() -> bool:
        return all(
            c.column in _columns(demo_databases, c.database, c.table) for c in SCHEMA_CHANGES
        )

    assert poll(all_columns, 60), f"columns missing; log:\n{Path(info['log']).read_text()}"
    assert poll(lambda: (generator.info() or {}).get("status", {}).get("changes", 0) > 300, 60)
    later = _counts(demo_databases)
    for table in ("movies", "productions", "talent", "artwork"):
        assert later[f"{table}_max_id"] > seeded[f"{table}_max_id"], (table, seeded, later)
    status = (generator.info() or {})["status"]
    # every kind of change flows, and the tables grow (the mix is random: the weights
    # themselves are unit-tested; inserts vs updates, 0.45 vs 0.40, is too close to order)
    assert min(status["insert"], status["update"], status["delete"]) > 0, status
    assert status["insert"] > status["delete"] and status["update"] > status["delete"], status
    assert status.get("refused", 0) == 0, Path(info["log"]).read_text()
    assert "schema change: ALTER TABLE talent ADD COLUMN agency" in Path(info["log"]).read_text()

    stopped = _mesh("demo", "--stop")
    assert stopped.returncode == 0 and f"pid {info['pid']}" in stopped.stdout
    assert poll(lambda: not alive(info["pid"]), 15)
    assert generator.info() is None
    frozen = _counts(demo_databases)
    time.sleep(1.5)
    assert _counts(demo_databases) == frozen  # nothing writes any more
    again = _mesh("demo", "--stop")
    assert "no demo generator was running" in again.stdout
