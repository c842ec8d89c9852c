"""Fixtures for the CDC connector against the real stack (PostgreSQL, Kafka, registry).

Each test gets its own source database (uuid-suffixed), so its slot, publication and topics are
its own; teardown stops the connector, drops the slot (an abandoned slot retains WAL) and the
database. Connectors run as real processes through :mod:`datamesh.cdc.supervisor`.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from psycopg2.extensions import make_dsn

from datamesh.cdc import supervisor
from datamesh.cdc.catalog import parse_lsn
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.endpoints import Record, endpoint

DOMAIN = "cdctest"
T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None], timeout_s: float, what: str, log: Path | None = None
) -> T:
    """Poll ``predicate`` until truthy; fail naming ``what`` (and the connector log tail)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{tail}")


class SourceDb:
    """A throw-away source database."""

    def __init__(self, server_dsn: str, name: str) -> None:
        self.name = name
        self.server_dsn = server_dsn
        self.dsn = make_dsn(server_dsn, dbname=name)
        self._conn = psycopg2.connect(self.dsn)
        self._conn.autocommit = True

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit); its rows, if any."""
        with self._conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    def connect(self) -> Any:
        """A new connection of its own (for writer threads)."""
        return psycopg2.connect(self.dsn)

    def wal_lsn(self) -> int:
        """The server's current WAL position."""
        return parse_lsn(self.sql("SELECT pg_current_wal_lsn()::text")[0][0])

    def close(self) -> None:
        self._conn.close()


@dataclasses.dataclass
class RunningConnector:
    """A connector process and where to look at it."""

    config: ConnectorConfig
    log: Path
    pid: int = 0

    @property
    def status_file(self) -> Path:
        assert self.config.status_file is not None
        return self.config.status_file

    def start(self) -> RunningConnector:
        self.pid = supervisor.start_connector(self.config, self.log)
        return self

    def status(self) -> dict[str, Any]:
        return supervisor.read_status(self.status_file) or {}

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], Any], what: str, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status()) and predicate(s) and s, timeout_s, what, self.log
        )

    def wait_caught_up(self, db: SourceDb, timeout_s: float = 90.0) -> dict[str, Any]:
        """Until the slot confirmed the current WAL position: all earlier events are in Kafka."""
        target = db.wal_lsn()
        return self.wait_status(
            lambda s: parse_lsn(s.get("confirmed_lsn")) >= target,
            f"connector to confirm LSN >= {target}",
            timeout_s,
        )

    def wait_snapshot_done(self, table: str, timeout_s: float = 90.0) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s.get("snapshot", {}).get(table, {}).get("status") == "done",
            f"snapshot of {table} to finish",
            timeout_s,
        )

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        supervisor.stop_connector(self.pid, timeout_s=5)  # reaps the zombie

    def stop(self) -> None:
        supervisor.stop_connector(self.pid, timeout_s=30)

    def exit_code(self, timeout_s: float = 30.0) -> int:
        """Wait for the process to exit by itself; its exit status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        raise AssertionError(f"connector {self.pid} still running\n{self.log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def endpoints(mesh_stack: dict[str, Record]) -> dict[str, str]:
    return {c: endpoint(c) for c in ("postgres", "kafka", "schema_registry")}


@pytest.fixture
def source_db(endpoints: dict[str, str]) -> Iterator[SourceDb]:
    name = f"cdc_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(endpoints["postgres"])
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    db = SourceDb(endpoints["postgres"], name)
    yield db
    db.close()
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s",
            (name,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def connector(
    endpoints: dict[str, str], source_db: SourceDb, tmp_path: Path
) -> Iterator[Callable[..., RunningConnector]]:
    """Factory: ``connector(tables, **config overrides)`` -> a configured (not started) process."""
    made: list[RunningConnector] = []

    def make(tables: tuple[str, ...], **overrides: Any) -> RunningConnector:
        slot = default_slot(DOMAIN, source_db.name)
        config = ConnectorConfig(
            dsn=endpoints["postgres"],
            database=source_db.name,
            tables=tables,
            domain=DOMAIN,
            bootstrap=endpoints["kafka"],
            registry=endpoints["schema_registry"],
            slot=slot,
            publication=slot,
            heartbeat_s=0.5,
            status_interval_s=0.2,
            pause_retry_s=1.0,
            status_file=tmp_path / f"status-{len(made)}.json",
        )
        running = RunningConnector(
            dataclasses.replace(config, **overrides), tmp_path / f"connector-{len(made)}.log"
        )
        made.append(running)
        return running

    yield make
    for running in made:
        if running.pid:
            supervisor.stop_connector(running.pid, timeout_s=10)


class TopicReader:
    """Reads a topic from the start with Confluent's ``AvroDeserializer``."""

    def __init__(self, bootstrap: str, registry: str) -> None:
        self.bootstrap = bootstrap
        self.deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))

    def read(self, topic: str, timeout_s: float = 30.0) -> list[tuple[Any, Any]]:
        """Every message up to the current end: (key, value) deserialized (None stays None)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"t-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        try:
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts
            }
            consumer.assign([TopicPartition(topic, p, 0) for p in parts])
            out: list[tuple[Any, Any]] = []
            pending = {p for p, end in ends.items() if end > 0}
            deadline = time.monotonic() + timeout_s
            while pending and time.monotonic() < deadline:
                for msg in consumer.consume(10_000, timeout=0.5):
                    if msg.error() is not None:
                        raise AssertionError(msg.error())
                    out.append(
                        (
                            self._decode(topic, msg.key(), MessageField.KEY),
                            self._decode(topic, msg.value(), MessageField.VALUE),
                        )
                    )
                    offset, partition = msg.offset(), msg.partition()
                    assert offset is not None and partition is not None
                    if offset + 1 >= ends[partition]:
                        pending.discard(partition)
            assert not pending, f"could not read {topic} to its end"
            return out
        finally:
            consumer.close()

    def _decode(self, topic: str, data: bytes | None, field: MessageField) -> Any:
        if data is None:
            return None
        return self.deserializer(data, SerializationContext(topic, field))


@pytest.fixture
def reader(endpoints: dict[str, str]) -> TopicReader:
    return TopicReader(endpoints["kafka"], endpoints["schema_registry"])


def latest_per_key(events: list[tuple[Any, Any]], key: str = "id") -> dict[Any, dict[str, Any]]:
    """Replay events: the row each key ends with (deletes and tombstones remove it)."""
    state: dict[Any, dict[str, Any]] = {}
    for k, v in events:
        if k is None:  # truncate
            state.clear()
            continue
        if v is None or v["op"] == "d":
            state.pop(k[key], None)
        else:
            state[k[key]] = v["after"]
    return state
