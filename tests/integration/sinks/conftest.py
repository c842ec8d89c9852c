"""Fixtures for sink tests: a fresh source database with a running CDC connector, an Iceberg
catalog under the session's MESH_HOME, and a sink runner against the session's real stack."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extensions import make_dsn
from pyiceberg.table import Table

from datamesh import endpoints
from datamesh.cdc import supervisor
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks.iceberg_sink import IcebergSink, SinkJob
from resources.iceberg import IcebergResource

Run = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Source:
    """A captured source database: ``run`` executes SQL, ``domain``/``topic`` name the CDC."""

    dsn: str
    database: str
    domain: str
    run: Run
    status_file: Path

    def topic(self, table: str) -> str:
        return f"{self.domain}.public.{table}"


def make_runner(db: Any) -> Run:
    def run(statement: str) -> list[tuple[Any, ...]]:
        with db.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def source(mesh_stack: object, tmp_path: Path) -> Iterator[Callable[..., Source]]:
    """Factory: ``source(ddl, *tables)`` creates a database, runs ``ddl`` and starts a
    connector capturing ``tables`` (``capture=False``: no connector); everything is dropped
    afterwards."""
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    made: list[tuple[str, int | None, Any]] = []

    def make(ddl: str, *tables: str, capture: bool = True) -> Source:
        name = f"sink_{uuid.uuid4().hex[:8]}"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        dsn = make_dsn(server, dbname=name)
        db = psycopg2.connect(dsn)
        db.autocommit = True
        run = make_runner(db)
        run(ddl)
        domain = f"sk{uuid.uuid4().hex[:8]}"
        status = tmp_path / f"{name}-status.json"
        if not capture:  # the test lets the platform start the connector
            made.append((name, None, db))
            return Source(dsn, name, domain, run, status)
        config = ConnectorConfig(
            dsn=server,
            database=name,
            tables=tuple(f"public.{t}" for t in tables),
            domain=domain,
            bootstrap=endpoints.endpoint("kafka"),
            registry=endpoints.endpoint("schema_registry"),
            slot=default_slot(domain, name),
            publication=default_slot(domain, name),
            set_replica_identity=True,
            heartbeat_s=0.5,
            status_interval_s=0.2,
            status_file=status,
        )
        pid = supervisor.start_connector(config, tmp_path / f"{name}.log")
        made.append((name, pid, db))
        src = Source(dsn, name, domain, run, status)
        _await_streaming(src, tmp_path / f"{name}.log")
        return src

    yield make
    for name, pid, db in made:
        if pid is not None:
            supervisor.stop_connector(pid, timeout_s=20)
        db.close()
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _await_streaming(src: Source, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = supervisor.read_status(src.status_file) or {}
        if status.get("state") == "streaming":
            return
        time.sleep(0.2)
    raise AssertionError(f"connector did not stream:\n{log.read_text()[-3000:]}")


def await_caught_up(src: Source, timeout_s: float = 30) -> None:
    """Wait until the connector has sent everything committed so far (its LSN passed ours)."""
    (lsn,) = src.run("SELECT pg_current_wal_lsn()::text")[0]
    target = _lsn(lsn)
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = supervisor.read_status(src.status_file) or {}
        if last.get("confirmed_lsn") and _lsn(str(last["confirmed_lsn"])) >= target:
            time.sleep(0.3)  # delivery acknowledged after the status write at most one interval
            return
        time.sleep(0.1)
    raise AssertionError(f"connector did not reach LSN {lsn}: {last}")


def _lsn(text: str) -> int:
    if "/" not in text:
        return int(text)
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@pytest.fixture
def sinks(mesh_stack: object) -> Callable[..., IcebergSink]:
    """Factory of sink runners on the session's stack (``before_commit`` optional)."""

    def make(before_commit: Callable[[], None] | None = None) -> IcebergSink:
        return IcebergSink(
            IcebergResource().catalog(),
            client_config(endpoints.endpoint("kafka")),
            SchemaClient(endpoints.endpoint("schema_registry")),
            before_commit=before_commit,
        )

    return make


def snapshot_offsets(table: Table) -> dict[str, int]:
    """The Kafka offsets (partition -> next offset) the table's current snapshot committed."""
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    text = summary["mesh.sink.offsets"] if summary is not None else None
    assert text is not None, f"the current snapshot of {table.name()} records no offsets"
    offsets: dict[str, int] = json.loads(text)["offsets"]
    return offsets


def table_rows(job: SinkJob, key: str = "id") -> dict[Any, dict[str, Any]]:
    """The Iceberg table read back with pyiceberg, by key (fails on a duplicate key)."""
    table = IcebergResource().catalog().load_table(job.table)
    rows = table.scan().to_arrow().to_pylist()
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        assert row[key] not in out, f"duplicate key {row[key]} in {job.table}"
        out[row[key]] = row
    return out


def normalize(value: Any) -> Any:
    """Comparable form of a value read from PostgreSQL or Iceberg."""
    if isinstance(value, Decimal):
        return str(value)
    return value
