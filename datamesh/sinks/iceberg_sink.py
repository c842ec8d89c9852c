"""One run of an Iceberg sink: read the input topic from the offsets the table last committed to
the end offsets seen now, decode, evolve the table, and commit ONE snapshot with the offsets.

Guarantees (each has an integration test):

- A run that dies before its commit leaves no trace (orphan data files are not referenced).
- A retried or concurrent run never applies an offset twice and never skips one: the commit
  asserts the snapshot the run started from; on a conflict the run re-reads the committed
  offsets and redoes its batch (pyiceberg's own rebase-retries are off, see iceberg_table).
- A record that cannot be decoded fails the run naming topic, partition and offset (nothing is
  written), or with ``on_bad_record: dlq`` goes to ``<sink>.dlq`` with the error in headers.
- The table gains a column before the batch carrying it is written; a change it cannot take
  fails the run naming the field and both types, and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, Producer
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

from datamesh import names
from datamesh.errors import TerminalError, TransientError
from datamesh.kafka_admin import TopicAdmin
from datamesh.schema_client import SchemaClient
from datamesh.sinks import arrow_changes, changes, iceberg_table, offsets, reader
from datamesh.sinks.arrow_changes import NotColumnar
from datamesh.sinks.reader import Raw
from datamesh.sinks.records import MAGIC, Decoder, UndecodableRecord
from datamesh.sinks.table_schema import (
    AddColumn,
    Evolution,
    iceberg_schema,
    plan_evolution,
    value_fields,
)
from datamesh.specs.product import DataProduct, TopicSettings
from datamesh.topic_apply import ensure_topic

log = logging.getLogger("datamesh.sinks")
Offsets = dict[int, int]
MAX_ATTEMPTS = 6


class BadRecord(TerminalError):
    """A record of the input topic that cannot be decoded or applied."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        super().__init__(
            f"record {topic}[{partition}]@{offset} cannot be applied: {reason}; nothing was "
            "written and the table's offsets did not move",
            fix="fix the producer, or declare `sink: {on_bad_record: dlq}` to set such records "
            "aside in the sink's dead-letter topic",
        )


@dataclass(frozen=True)
class SinkJob:
    """What one Iceberg sink does, derived from its declaration."""

    product_id: str
    table: str
    topic: str
    key: tuple[str, ...]
    mode: str
    envelope: bool
    partition_by: tuple[str, ...] = ()
    on_bad_record: str = "fail"
    dlq_topic: str = ""
    declared_fields: tuple[dict[str, Any], ...] = ()

    @property
    def value_subject(self) -> str:
        """The registry subject of the input's values."""
        return names.value_subject(self.topic)


def sink_job(product: DataProduct, by_id: dict[str, DataProduct]) -> SinkJob:
    """The job of an ``iceberg_sink`` product (its input must be Kafka-backed: checked at load)."""
    assert product.sink is not None
    source = by_id[product.inputs[0]]
    return SinkJob(
        product_id=product.id,
        table=".".join(names.iceberg_table(product)),
        topic=names.topic(source),
        key=product.key,
        mode=product.sink.mode,
        envelope=source.kind == "cdc",
        partition_by=product.sink.partition_by,
        on_bad_record=product.sink.on_bad_record,
        dlq_topic=names.sink_dlq_topic(product),
        declared_fields=tuple((source.value_schema or {}).get("fields", [])),
    )


@dataclass(frozen=True)
class Staged:
    """What one batch commits: rows to write, keys whose old rows leave (None: append), whether
    the table is emptied first (a truncate), and the newest event time among the changes."""

    rows: pa.Table
    touched: pa.Table | None
    truncate: bool
    newest_event_ms: int | None


@dataclass
class SinkReport:
    """What a run did (asset metadata)."""

    table: str
    topic: str
    created: bool = False
    snapshot_id: int | None = None
    offsets_from: Offsets = field(default_factory=dict)
    offsets_to: Offsets = field(default_factory=dict)
    changes: int = 0
    upserted: int = 0
    deleted: int = 0
    appended: int = 0
    truncated: bool = False
    row_count: int = 0
    newest_event_ms: int | None = None
    columns_added: tuple[str, ...] = ()
    dead_letters: int = 0
    attempts: int = 0
    heartbeats: int = 0

    def metadata(self) -> dict[str, Any]:
        """Dagster metadata: counts, offsets, snapshot and the newest event time written."""
        newest = (
            datetime.fromtimestamp(self.newest_event_ms / 1000, UTC).isoformat()
            if self.newest_event_ms
            else ""
        )
        return {
            "table": self.table,
            "topic": self.topic,
            "dagster/row_count": self.row_count,
            "changes_read": self.changes,
            "rows_upserted": self.upserted,
            "rows_deleted": self.deleted,
            "rows_appended": self.appended,
            "offsets_from": _range_text(self.offsets_from),
            "offsets_to": _range_text(self.offsets_to),
            "snapshot_id": str(self.snapshot_id or ""),
            "newest_event_time": newest,
            "newest_event_ms": self.newest_event_ms or 0,
            "columns_added": ", ".join(self.columns_added),
            "dead_letters": self.dead_letters,
            "table_created": self.created,
            "commit_attempts": self.attempts,
            "heartbeats_read": self.heartbeats,
        }


def _range_text(o: Offsets) -> str:
    return ",".join(f"{p}:{o[p]}" for p in sorted(o))


class IcebergSink:
    """Runs sink jobs against one catalog, Kafka cluster and registry.

    ``before_commit`` is called after the batch is staged and before it is committed (tests
    use it to kill or race a run at the worst moment).
    """

    def __init__(
        self,
        catalog: Catalog,
        kafka_config: dict[str, Any],
        registry: SchemaClient,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.kafka_config = kafka_config
        self.registry = registry
        self.before_commit = before_commit

    def ensure_table(self, job: SinkJob) -> tuple[Table, bool]:
        """Create the table from the input's registered schema (else its declared one)."""
        latest = self.registry.latest(job.value_subject)
        fields = value_fields(latest.schema) if latest else list(job.declared_fields)
        schema = iceberg_schema(fields, job.key, job.mode)
        return iceberg_table.open_or_create(self.catalog, job.table, schema, job.partition_by)

    def run(self, job: SinkJob, progress: Callable[[str], None] = log.info) -> SinkReport:
        """Apply everything new on the input topic in one snapshot; see the module docstring."""
        table, created = self.ensure_table(job)
        consumer = reader.open_consumer(self.kafka_config, names.sink_group(job.product_id))
        try:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                table = self.catalog.load_table(job.table)
                report = self._attempt(job, table, consumer, progress)
                if report is not None:
                    report.created, report.attempts = created, attempt
                    return report
                progress(f"{job.table}: another run committed first; redoing from its offsets")
        finally:
            consumer.close()
        raise TransientError(
            f'Iceberg sink "{job.table}": {MAX_ATTEMPTS} commits in a row lost to concurrent runs',
            fix="run it again; avoid launching many runs of one sink at once",
        )

    def _attempt(
        self, job: SinkJob, table: Table, consumer: Consumer, progress: Callable[[str], None]
    ) -> SinkReport | None:
        """One read-apply-commit; None when a concurrent commit won."""
        start = offsets.committed(table, job.topic)
        end = self._end_offsets(job, consumer, start)
        report = SinkReport(job.table, job.topic, offsets_from=dict(start), offsets_to=dict(start))
        if all(e <= start.get(p, 0) for p, e in end.items()):
            report.row_count = _row_count(table)
            report.newest_event_ms = offsets.newest_event_ms(table)
            progress(f"{job.table}: up to date with {job.topic} ({_range_text(end)})")
            return report
        total = sum(e - start.get(p, 0) for p, e in end.items())
        progress(f"{job.table}: reading {total:,} offsets of {job.topic}")
        decoder = Decoder(self.registry.by_id)
        pipeline = arrow_changes.Pipeline(decoder.schema, job.envelope)
        fetched = reader.read_range(
            consumer, job.topic, start, end, _every(50_000, total, job, progress), pipeline.feed
        )
        raws = fetched.records
        columns, records, dead = self._decode(job, raws, decoder, pipeline, progress)
        tx = table.transaction()
        steps = self._evolution(job, table, raws, decoder)
        iceberg_table.evolve(tx, steps)
        report.columns_added = tuple(s.name for s in steps if isinstance(s, AddColumn))
        staged = (
            self._stage_columns(job, tx, columns, report)
            if columns is not None
            else self._stage_records(job, tx, records, report)
        )
        props = offsets.summary_property(job.topic, {**start, **fetched.next_offsets})
        props.update(offsets.heartbeat_property(fetched.heartbeats))
        report.heartbeats = len(fetched.heartbeats)
        props.update(offsets.event_property(offsets.newest_event_ms(table), staged.newest_event_ms))
        report.newest_event_ms = int(props.get(offsets.EVENT_PROPERTY, 0)) or None
        iceberg_table.commit_batch(
            table, tx, job.key, staged.touched, staged.truncate, staged.rows, props
        )
        if dead:
            report.dead_letters = self._dead_letter(job, dead)
        if self.before_commit is not None:
            self.before_commit()
        try:
            committed = tx.commit_transaction()
        except CommitFailedException as exc:
            log.info("%s: commit conflict: %s", job.table, exc)
            return None
        snapshot = committed.current_snapshot()
        report.snapshot_id = snapshot.snapshot_id if snapshot else None
        report.row_count = _row_count(committed)
        report.offsets_to = dict(fetched.next_offsets)
        progress(
            f"{job.table}: committed snapshot {report.snapshot_id}: {report.changes:,} changes "
            f"({report.upserted:,} upserted, {report.deleted:,} deleted, "
            f"{report.appended:,} appended), offsets {_range_text(report.offsets_to)}"
        )
        return report

    def _end_offsets(self, job: SinkJob, consumer: Consumer, start: Offsets) -> Offsets:
        marks = reader.watermarks(consumer, job.topic)
        if not marks:
            raise TerminalError(
                f'the input topic "{job.topic}" of sink {job.product_id} does not exist',
                fix="materialize the sink's input first",
            )
        end = {p: high for p, (_, high) in marks.items()}
        behind = {p: o for p, o in start.items() if o > end.get(p, 0)}
        if behind:
            raise TerminalError(
                f'Iceberg table "{job.table}" committed offsets {behind} of "{job.topic}", '
                f"beyond the topic's end {end}: the topic was recreated",
                fix="recreate the sink table (drop it) to reload it from the new topic",
            )
        return end

    def _decode(
        self,
        job: SinkJob,
        raws: list[Raw],
        decoder: Decoder,
        pipeline: arrow_changes.Pipeline,
        progress: Callable[[str], None],
    ) -> tuple[pa.Table | None, list[changes.Record], list[tuple[Raw, str]]]:
        """Columns when the batch decodes as blocks, else records (and dead letters)."""
        if not raws:  # heartbeats only: an empty batch that moves the offsets
            return None, [], []
        try:
            return pipeline.result(), [], []
        except (NotColumnar, UndecodableRecord) as exc:
            progress(f"{job.table}: decoding record by record ({exc})")
        out: list[changes.Record] = []
        dead: list[tuple[Raw, str]] = []
        for raw in raws:
            try:
                out.append(_record(decoder, raw, job.envelope))
            except UndecodableRecord as exc:
                if job.on_bad_record != "dlq":
                    raise BadRecord(job.topic, raw.partition, raw.offset, str(exc)) from exc
                dead.append((raw, str(exc)))
        return None, out, dead

    def _evolution(
        self, job: SinkJob, table: Table, raws: list[Raw], decoder: Decoder
    ) -> list[Evolution]:
        """How the table must change for this batch (see ``plan_evolution``)."""
        value_ids = sorted(
            {
                int.from_bytes(r.value[1:5], "big")
                for r in raws
                if r.value is not None and len(r.value) >= 5 and r.value[0] == MAGIC
            }
        )
        writers = [
            iceberg_schema(value_fields(decoder.schemas[i]), (), job.mode)
            for i in value_ids
            if i in decoder.schemas
        ]
        registered = self.registry.latest(job.value_subject)
        if registered is not None:
            latest = iceberg_schema(value_fields(registered.schema), (), job.mode)
        else:
            latest = writers[-1] if writers else table.schema()
        return plan_evolution(job.table, table.schema(), latest, writers, job.key)

    def _stage_columns(
        self, job: SinkJob, tx: Any, columns: pa.Table, report: SinkReport
    ) -> Staged:
        """A batch decoded as columns (the fast path), as rows to write and keys to replace."""
        schema = schema_to_pyarrow(tx.table_metadata.schema(), include_field_ids=False)
        report.changes = columns.num_rows
        if job.mode == "append":
            rows, newest = arrow_changes.changelog_table(columns, schema)
            report.appended = rows.num_rows
            return Staged(rows, None, False, newest)
        batch = arrow_changes.upsert_tables(columns, job.key, schema)
        report.upserted, report.deleted = batch.upserts.num_rows, batch.deleted
        return Staged(batch.upserts, batch.touched, False, batch.newest_event_ms)

    def _stage_records(
        self, job: SinkJob, tx: Any, records: list[changes.Record], report: SinkReport
    ) -> Staged:
        """A batch decoded record by record, as rows to write and keys to replace."""
        report.changes = len(records)
        if job.mode == "append":
            rows, newest = changes.changelog_rows(records, job.key, job.envelope)
            report.appended = len(rows)
            return Staged(iceberg_table.arrow_rows(tx, rows), None, False, newest)
        batch = changes.fold_upserts(records, job.key, job.envelope)
        report.truncated = batch.truncated
        upserts = batch.upserts
        report.upserted, report.deleted = len(upserts), len(batch.deletes)
        touched = _keys_table(tx, job.key, list(batch.rows))
        rows = iceberg_table.arrow_rows(tx, upserts)
        return Staged(rows, touched, batch.truncated, batch.newest_event_ms)

    def _dead_letter(self, job: SinkJob, dead: list[tuple[Raw, str]]) -> int:
        """Send undecodable records to the sink's dead-letter topic, unchanged, error in headers.

        Sent before the batch commits, so none is lost if the commit never happens; a batch that
        is redone (a lost commit race, a retried run) sends them again: at least once.
        """
        settings = TopicSettings(1, 1, 7 * 86_400_000, "delete")
        ensure_topic(TopicAdmin(self.kafka_config), job.dlq_topic, settings, job.product_id)
        producer = Producer({**self.kafka_config, "enable.idempotence": True})
        for raw, error in dead:
            headers: dict[str, str | bytes | None] = {
                "mesh.error": error,
                "mesh.source.topic": job.topic,
                "mesh.source.partition": str(raw.partition),
                "mesh.source.offset": str(raw.offset),
                "mesh.sink": job.product_id,
            }
            producer.produce(job.dlq_topic, raw.value, raw.key, headers=headers)
        left = producer.flush(30)
        if left:
            raise TransientError(
                f'{left} dead letters not acknowledged by "{job.dlq_topic}"', fix="retry the run"
            )
        return len(dead)


def _record(decoder: Decoder, raw: Raw, envelope: bool) -> changes.Record:
    # Keys written by the platform are framed Avro; a producer's plain key (bytes, a string) is
    # not needed when the value carries the key fields, so it is left undecoded.
    framed = raw.key is not None and len(raw.key) >= 5 and raw.key[0] == MAGIC
    key = decoder.decode(raw.key)[1] if framed and raw.key is not None else None
    if raw.value is None and key is None and not envelope:
        raise UndecodableRecord("a tombstone without a framed Avro key: no key to delete")
    value = None
    if raw.value is not None:
        schema_id, value = decoder.decode(raw.value)
        if envelope and not changes.is_envelope(decoder.schemas[schema_id]):
            raise UndecodableRecord(f"schema id {schema_id} is not a Debezium change envelope")
    return changes.Record(raw.partition, raw.offset, raw.timestamp_ms, key, value)


def _int(value: int | None) -> int:
    """A consumed message's partition or offset (always set; -1 if not)."""
    return -1 if value is None else value


def _keys_table(tx: Any, key: tuple[str, ...], keys: list[tuple[Any, ...]]) -> pa.Table:
    schema = schema_to_pyarrow(tx.table_metadata.schema(), include_field_ids=False)
    return pa.table(
        {k: pa.array([t[i] for t in keys], type=schema.field(k).type) for i, k in enumerate(key)}
    )


def _row_count(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary["total-records"] or 0)


def _every(
    step: int, total: int, job: SinkJob, progress: Callable[[str], None]
) -> Callable[[int], None]:
    """A read-progress callback that speaks every ``step`` messages."""
    state = {"next": step}

    def report(done: int) -> None:
        if done >= state["next"]:
            progress(f"{job.table}: read {done:,} of up to {total:,} messages")
            state["next"] = done + step

    return report
