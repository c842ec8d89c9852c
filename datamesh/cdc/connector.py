"""One connector process: pre-flight, stream, snapshot, heartbeat, report; retry what is transient.

Each *session* checks the source (tables, publication, slot), opens the replication stream at
the last confirmed LSN and loops: apply messages, and every :data:`TICK_S` serve Kafka's
delivery reports, confirm to the slot what Kafka holds, emit a heartbeat, move the snapshot
forward, probe paused tables, write the status file. A :class:`TransientError` (database or
broker gone) ends the session, and the next one starts after a back-off; a :class:`Rewind`
(a paused table's cause was fixed, a delivery failed) starts the next one at once. A
:class:`TerminalError` stops the process with the error (and its fix) in the status file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import psycopg2

from datamesh import heartbeat
from datamesh.cdc import snapshot_store as store
from datamesh.cdc.catalog import connect, describe_table, format_lsn, slot_lag_bytes
from datamesh.cdc.changes import ChangeHandler
from datamesh.cdc.config import ConnectorConfig
from datamesh.cdc.delivery import KafkaSink
from datamesh.cdc.errors import DeliveryFailed, SourceUnavailable
from datamesh.cdc.schema_book import SchemaBook
from datamesh.cdc.setup import check_tables, ensure_publication, ensure_slot, ensure_state
from datamesh.cdc.snapshot import SnapshotRunner
from datamesh.cdc.status import Status, write_status
from datamesh.cdc.stream import ReplicationStream
from datamesh.cdc.tables import CapturedTable, Tables
from datamesh.cdc.topics import ConnectorTopics
from datamesh.errors import MeshError, TerminalError, TransientError
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings

TICK_S = 0.1
POLL_EVERY = 1024  # messages between delivery-report polls under load
HEARTBEAT_PREFIX = "mesh_cdc_heartbeat"
MAX_BACKOFF_S = 30.0


class Rewind(Exception):
    """Replay the stream from the last confirmed LSN (not an error)."""


class Connector:
    """Follows one source database into Kafka until :meth:`request_stop`."""

    def __init__(self, config: ConnectorConfig, log: Callable[[str], None]) -> None:
        self.config = config
        self.log = log
        self.status = Status(config.name, config.slot, config.database)
        self.sink = KafkaSink(client_config(config.bootstrap))
        self.book = SchemaBook(config.registry, config.database, config.name)
        settings = TopicSettings(
            config.partitions, config.replication_factor, -1, config.cleanup_policy
        )
        self.topics = ConnectorTopics(config.bootstrap, settings)
        self.tables: Tables | None = None
        self.confirmed = 0  # last LSN confirmed to the slot (0: the slot's own position)
        self._acked = 0
        self._stop = False
        self._stream: ReplicationStream | None = None
        self._aux: Any = None
        self._handler: ChangeHandler | None = None
        self._next_heartbeat = self._next_probe = self._next_status = 0.0
        # synthetic events (datamesh.heartbeat): next due time and seq per declared table; seq
        # starts at the epoch millisecond and grows by one a beat (at most one a second), so a
        # restarted connector starts past the last one its predecessor wrote
        self._beat_due = {t: 0.0 for t, _ in config.heartbeats}
        self._beat_seq = {t: int(time.time() * 1000) for t, _ in config.heartbeats}

    def request_stop(self, *_: object) -> None:
        """Finish the current message, deliver what is queued, confirm it, and exit."""
        self._stop = True

    def run(self) -> int:
        """Run sessions until stopped (exit code 0) or a terminal error (exit code 2)."""
        backoff = 1.0
        while not self._stop:
            try:
                self._session()
            except Rewind as why:
                self.log(f"replaying from {format_lsn(self.confirmed)}: {why}")
                continue
            except TransientError as exc:
                self._report("retrying", exc)
                self.log(f"retrying in {backoff:.0f}s: {exc}")
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except TerminalError as exc:
                self._report("failed", exc)
                self.log(f"FAILED: {exc}")
                self.sink.close()
                return 2
            finally:
                self._close_session()
            backoff = 1.0
        self.sink.close()
        self._report("stopped", None)
        return 0

    # -- session -----------------------------------------------------------------------------

    def _session(self) -> None:
        cfg = self.config
        try:
            cur = self._prepare()
        except psycopg2.OperationalError as exc:
            raise SourceUnavailable(
                f"source database: {str(exc).strip()}",
                fix="check PostgreSQL; the connector retries",
            ) from exc
        assert self.tables is not None
        runner = SnapshotRunner(
            cur, cfg.slot, cfg.tables, cfg.chunk_size, cfg.snapshot_pause_s, self.log
        )
        self._handler = ChangeHandler(
            self.tables,
            self.sink,
            self.book,
            runner,
            cfg.slot,
            cfg.truncate,
            lambda name: describe_table(cur, name),
            self.topics.compacted,
            self.log,
            self.confirmed,
        )
        self._stream = ReplicationStream(cfg.database_dsn, cfg.slot, cfg.publication, cfg.name)
        self._stream.open(self.confirmed)
        self.status.state = "streaming"
        self.log(f"streaming slot {cfg.slot} from {format_lsn(self.confirmed)}")
        try:
            self._loop(self._stream, self._handler, runner, cur)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            raise SourceUnavailable(
                f"source database: {str(exc).strip()}",
                fix="check PostgreSQL; the connector retries",
            ) from exc

    def _prepare(self) -> Any:
        """Pre-flight on a fresh auxiliary connection; returns its (autocommit) cursor."""
        cfg = self.config
        self._aux = connect(cfg.database_dsn, f"{cfg.name}-aux")
        self._aux.autocommit = True
        cur = self._aux.cursor()
        infos = check_tables(cur, cfg)
        ensure_state(cur, cfg.slot)
        ensure_publication(cur, cfg)
        if ensure_slot(cur, cfg):
            self.log(
                f"created slot {cfg.slot}"
                + (" (initial snapshot requested)" if cfg.snapshot == "initial" else "")
            )
        if self.tables is None:
            self.tables = Tables({t: self._capture(t, infos[t].shape.key) for t in cfg.tables})
        else:
            self.tables.forget_stream_state()
        return cur

    def _capture(self, table: str, key: tuple[str, ...]) -> CapturedTable:
        topic = self.config.topic(table)
        compacted, partitions = self.topics.ensure(topic)
        self.sink.add_topic(topic, partitions)
        return CapturedTable(table, topic, key, compacted)

    def _loop(
        self, stream: ReplicationStream, handler: ChangeHandler, runner: SnapshotRunner, cur: Any
    ) -> None:
        read, handle, poll = stream.read, handler.handle, self.sink.poll
        next_tick = 0.0
        count = 0
        while not self._stop:
            msg = read()
            if msg is not None:
                handle(msg.payload, msg.data_start)
                count += 1
                if count % POLL_EVERY:
                    continue
                poll()
            now = time.monotonic()
            if now >= next_tick:
                self._tick(stream, handler, runner, cur, now)
                next_tick = now + TICK_S
            if msg is None:
                stream.wait(TICK_S)

    # -- housekeeping ------------------------------------------------------------------------

    def _tick(
        self,
        stream: ReplicationStream,
        handler: ChangeHandler,
        runner: SnapshotRunner,
        cur: Any,
        now: float,
    ) -> None:
        self._confirm(stream, handler)
        if now >= self._next_heartbeat:
            cur.execute(
                "SELECT pg_logical_emit_message(false, %s, %s)",
                (HEARTBEAT_PREFIX, self.config.name),
            )
            self._next_heartbeat = now + self.config.heartbeat_s
        self._synthetic(cur, now)
        assert self.tables is not None
        runner.tick(self.tables.paused)
        if now >= self._next_probe:
            self._next_probe = now + self.config.pause_retry_s
            self._probe_pauses()
        if now >= self._next_status:
            self._next_status = now + self.config.status_interval_s
            self.status.state = "paused" if self.tables.pauses() else "streaming"
            self._write_status(stream, cur)

    def _synthetic(self, cur: Any, now: float) -> None:
        """Write each due heartbeat table's next synthetic event into the WAL, as a
        transactional message: the handler publishes it at its commit, in order with the
        table's changes (see :mod:`datamesh.heartbeat`)."""
        for table, every in self.config.heartbeats:
            if now < self._beat_due[table]:
                continue
            seq = self._beat_seq[table]
            cur.execute(
                "SELECT pg_logical_emit_message(true, %s, %s)",
                (heartbeat.MESSAGE_PREFIX, heartbeat.message(self.config.topic(table), seq)),
            )
            self._beat_due[table], self._beat_seq[table] = now + every, seq + 1

    def _confirm(
        self, stream: ReplicationStream, handler: ChangeHandler, force: bool = False
    ) -> None:
        """Confirm to the slot the highest LSN Kafka holds everything before (capped by pauses)."""
        self.sink.poll()
        acked = self.sink.acks.confirmable()
        if acked is not None:
            self._acked = acked
        safe = self._acked if handler.cap is None else min(self._acked, handler.cap)
        if safe > self.confirmed or force:
            # sent at once (not at psycopg2's next status interval): the slot's view, the
            # status file and WAL retention follow Kafka within one tick
            stream.confirm(max(safe, self.confirmed), force=True)
            self.confirmed = max(safe, self.confirmed)

    def _probe_pauses(self) -> None:
        assert self.tables is not None
        for table in self.tables.pauses():
            pause = table.paused
            if pause is not None and pause.probe is not None and pause.probe():
                raise Rewind(f"{table.name} can flow again ({type(pause.error).__name__} fixed)")

    def _write_status(self, stream: ReplicationStream | None, cur: Any) -> None:
        if self.config.status_file is None:
            return
        s = self.status
        s.last_lsn = format_lsn(stream.wal_end) if stream is not None else s.last_lsn
        s.confirmed_lsn = format_lsn(self.confirmed)
        s.events_sent, s.events_acked = self.sink.sent, self.sink.acks.acked
        s.in_flight = self.sink.in_flight()
        if self.tables is not None:
            s.tables = {t.name: t.status() for t in self.tables.by_name.values()}
            paused = [t.paused for t in self.tables.pauses() if t.paused is not None]
            s.error = str(paused[0].error) if paused else s.error
        if cur is not None:
            s.slot_lag_bytes = slot_lag_bytes(cur, self.config.slot)
            s.snapshot = store.progress(cur, self.config.slot)
        write_status(self.config.status_file, s)

    def _report(self, state: str, error: MeshError | None) -> None:
        self.status.state = state  # type: ignore[assignment]
        if error is not None:
            self.status.error = str(error)
            self.status.retries += state == "retrying"
        try:
            self._write_status(None, None)
        except OSError as exc:
            self.log(f"cannot write the status file: {exc}")

    def _close_session(self) -> None:
        """Deliver what is queued, confirm it (if the stream still answers), close connections."""
        stream, handler = self._stream, self._handler
        self._stream = self._handler = None
        self.sink.drain(30.0)
        try:
            if stream is not None and handler is not None:
                self._confirm(stream, handler, force=True)
        except DeliveryFailed:
            self.sink.reset()  # a fresh idempotent producer; the stream replays the rest
        except MeshError:
            pass  # the connection is gone: the next session starts at self.confirmed anyway
        # acknowledged is not confirmable across sessions: past a pause's cap lie events of
        # the paused table that were never sent; the next session replays from `confirmed`
        self._acked = self.confirmed
        if stream is not None:
            stream.close()
        if self._aux is not None:
            with contextlib.suppress(psycopg2.Error):
                self._aux.close()
            self._aux = None

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop and time.monotonic() < deadline:
            time.sleep(0.1)
