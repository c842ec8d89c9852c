"""Bad input fails clearly (terminal: exit 2, status ``failed``, the fix named); a database
that goes away mid-stream is retried and nothing is lost; an idle slot keeps moving."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from datamesh.cdc.catalog import parse_lsn
from datamesh.process import free_port
from datamesh.stack.postgres import SERVICE_USER, clusters_dir, pg_bin
from tests.integration.cdc.conftest import DOMAIN, RunningConnector, SourceDb, TopicReader

pytestmark = pytest.mark.integration


def _table(db: SourceDb, ddl: str = "id int PRIMARY KEY, v text", full: bool = True) -> str:
    name = f"public.t_{uuid.uuid4().hex[:8]}"
    db.sql(f"CREATE TABLE {name} ({ddl})")
    if full:
        db.sql(f"ALTER TABLE {name} REPLICA IDENTITY FULL")
    return name


def _failure(run: RunningConnector) -> str:
    assert run.start().exit_code() == 2, run.log.read_text()
    status = run.status()
    assert status["state"] == "failed"
    assert status["error"] in run.log.read_text()
    return str(status["error"])


def test_table_without_primary_key(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    table = _table(source_db, "id int, v text")
    error = _failure(connector((table,)))
    assert f"table {table} has no primary key" in error
    assert f"fix: ALTER TABLE {table} ADD PRIMARY KEY" in error


def test_replica_identity_nothing_is_refused_or_set(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    table = _table(source_db, full=False)
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY NOTHING")
    error = _failure(connector((table,)))
    assert (
        "REPLICA IDENTITY NOTHING" in error
        and f"ALTER TABLE {table} REPLICA IDENTITY FULL" in error
    )
    run = connector((table,), set_replica_identity=True, snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    assert source_db.sql(
        "SELECT relreplident FROM pg_class WHERE oid = %s::regclass", (table,)
    ) == [("f",)]


def test_unknown_table(source_db: SourceDb, connector: Callable[..., RunningConnector]) -> None:
    error = _failure(connector(("public.no_such_table",)))
    assert f"table public.no_such_table does not exist in database {source_db.name}" in error


def test_publication_lacking_a_table(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    table, other = _table(source_db), _table(source_db)
    run = connector((table,))
    source_db.sql(f"CREATE PUBLICATION {run.config.publication} FOR TABLE {other}")
    error = _failure(run)
    assert f"publication {run.config.publication} does not include {table}" in error
    assert f"ALTER PUBLICATION {run.config.publication} ADD TABLE {table}" in error


def test_dropped_slot_is_refused_until_recreated(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    table = _table(source_db)
    run = connector((table,), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    run.stop()
    source_db.sql("SELECT pg_drop_replication_slot(%s)", (run.config.slot,))
    error = _failure(run)
    assert f"replication slot {run.config.slot}" in error and "no longer exists" in error
    assert "--recreate-slot --snapshot initial" in error
    again = connector((table,), recreate_slot=True).start()
    again.wait_snapshot_done(table)


def test_bad_command_line() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "datamesh.cdc",
            "--dsn",
            "x",
            "--database",
            "d",
            "--tables",
            "movies",
            "--domain",
            "d",
            "--bootstrap",
            "b",
            "--registry",
            "r",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "expected schema.table names" in out.stderr


@pytest.fixture
def replica_server(mesh_home: Path) -> Iterator[str]:
    """A second PostgreSQL cluster with ``wal_level=replica`` (logical decoding impossible)."""
    home = mesh_home / f"pg-replica-{uuid.uuid4().hex[:6]}"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root; its user may not reach mesh_home: its own dir
        home = Path(tempfile.mkdtemp(prefix="pg-replica-", dir=clusters_dir()))
        shutil.chown(home, SERVICE_USER, SERVICE_USER)
        prefix = ["runuser", "-u", SERVICE_USER, "--"]
    else:
        home.mkdir()
    port = free_port()
    bin_dir = pg_bin()
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(home / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-c wal_level=replica -c port={port} -c listen_addresses=127.0.0.1 -k {home}"
    ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(home / "data")]
    subprocess.run(
        [*ctl, "-o", options, "-l", str(home / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_wal_level_not_logical(
    replica_server: str, connector: Callable[..., RunningConnector]
) -> None:
    conn = psycopg2.connect(replica_server)
    conn.autocommit = True
    conn.cursor().execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.close()
    run = connector(("public.t",), dsn=replica_server, database="postgres")
    error = _failure(run)
    assert "wal_level is 'replica'" in error and "ALTER SYSTEM SET wal_level = logical" in error


def test_database_going_away_mid_stream_loses_nothing(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _table(source_db)
    run = connector((table,), snapshot="never").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {table} SELECT g, 'before' FROM generate_series(1, 100) g")
    killed = source_db.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
        (f"{run.config.name}%",),
    )
    assert len(killed) == 2  # the walsender and the auxiliary connection
    source_db.sql(f"INSERT INTO {table} SELECT g, 'after' FROM generate_series(101, 200) g")
    status = run.wait_caught_up(source_db)
    assert status["retries"] >= 1 and "fix:" in status["error"]
    assert "retrying in" in run.log.read_text()
    ids = {k["id"] for k, _ in reader.read(f"{DOMAIN}.{table}")}
    assert ids == set(range(1, 201))


def test_idle_slot_keeps_moving_with_heartbeats(
    source_db: SourceDb, connector: Callable[..., RunningConnector], endpoints: dict[str, str]
) -> None:
    table = _table(source_db)
    run = connector((table,), snapshot="never", heartbeat_s=0.3).start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    busy = psycopg2.connect(make_dsn(endpoints["postgres"], dbname="postgres"))
    busy.autocommit = True
    with busy.cursor() as cur:  # WAL from another database: nothing in this slot's publication
        name = f"busy_{uuid.uuid4().hex[:6]}"
        cur.execute(f"CREATE TABLE {name} AS SELECT g FROM generate_series(1, 50000) g")
        cur.execute(f"DROP TABLE {name}")
    busy.close()
    target = source_db.wal_lsn()
    run.wait_status(lambda s: parse_lsn(s["confirmed_lsn"]) >= target, "the idle slot to move")
    confirmed = source_db.sql(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (run.config.slot,),
    )[0][0]
    assert parse_lsn(confirmed) >= target
    status = run.wait_status(
        lambda s: s["slot_lag_bytes"] is not None and s["slot_lag_bytes"] < 65_536, "small lag"
    )
    assert status["events_sent"] == 0
