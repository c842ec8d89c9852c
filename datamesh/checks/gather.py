"""Read what the checks need from the real systems, in one pass for any number of products.

Kafka: one metadata call, one batched ``list_offsets``, one group-offsets request per Flink job,
and one consumer that reads the newest records of each topic and the first unconsumed record of
each lagging reader (a few records per partition, never a topic scan). Flink: one
``/jobs/overview``. Registry: two REST calls per subject, on a small thread pool. Iceberg: the
sink tables' snapshot summaries. PostgreSQL: the heartbeat table of each ``postgres_sink``
whose inputs carry heartbeats (:mod:`datamesh.heartbeat`). CDC: the connectors' status files.
Paused pipelines: the pause records under ``MESH_HOME`` (:mod:`datamesh.pauses`). A system
that fails is recorded in :attr:`Observed.errors`; the checks that need it say "could not evaluate".
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import psycopg2
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from psycopg2.extensions import make_dsn
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from datamesh import endpoints, heartbeat, names, pauses
from datamesh.cdc import running
from datamesh.checks.evaluate import GROUPS, PLATFORM_STATE, dlq_topic, hop_of
from datamesh.checks.observed import Connector, Observed, Offsets, Reader, Subject, Topic
from datamesh.flink.jobmanager import JobManager
from datamesh.schema_client import SchemaClient
from datamesh.sinks import offsets as sink_offsets
from datamesh.sinks.records import Decoder, UndecodableRecord
from datamesh.specs.product import DataProduct

TIMEOUT_S = 10.0
LATENCY_SAMPLE = 200  # newest changes per partition behind a latency_p99 figure
HEARTBEAT_KEEP_S = 3600  # rows of a PostgreSQL sink's heartbeat table older than this are removed
TAIL = 3  # newest records read per partition for the newest event time (skips tombstones)


@dataclass(frozen=True)
class Systems:
    """Where to read, each made when first needed (an endpoint that cannot even be resolved
    is that system's error, not the whole evaluation's): Kafka client config, registry,
    JobManager, Iceberg catalog."""

    kafka: Callable[[], dict[str, Any]]
    registry: Callable[[], SchemaClient]
    flink: Callable[[], JobManager]
    catalog: Callable[[], Catalog]


def gather(
    products: Sequence[DataProduct], by_id: Mapping[str, DataProduct], s: Systems
) -> Observed:
    """One :class:`Observed` for ``products`` (and the inputs their checks look through)."""
    wanted = _closure(products, by_id)
    obs = Observed(now_ms=int(time.time() * 1000))
    _connectors(wanted, obs)
    _guard(obs, PLATFORM_STATE, lambda: obs.paused.update(pauses.all_paused()), None)
    jobs = _guard(obs, "flink", lambda: _job_states(s.flink()), {})
    sinks = _guard(obs, "iceberg", lambda: _sink_tables(wanted, by_id, s.catalog(), obs), {})
    _guard(obs, "postgres", lambda: _pg_heartbeats(wanted, by_id, obs), None)
    _guard(obs, "registry", lambda: _subjects(wanted, s.registry(), obs), None)
    _guard(obs, "kafka", lambda: _kafka(wanted, by_id, s, obs, jobs or {}, sinks or {}), None)
    return obs


def _guard(obs: Observed, system: str, read: Callable[[], Any], default: Any) -> Any:
    try:
        return read()
    except Exception as exc:  # any failure of a system: recorded, not raised
        obs.errors[system] = f"{type(exc).__name__}: {exc}"[:300]
        return default


def _closure(
    products: Sequence[DataProduct], by_id: Mapping[str, DataProduct]
) -> list[DataProduct]:
    """The products and everything upstream of them (freshness looks through the inputs)."""
    seen: dict[str, DataProduct] = {}

    def visit(p: DataProduct) -> None:
        if p.id not in seen:
            seen[p.id] = p
            for i in p.inputs:
                visit(by_id[i])

    for p in products:
        visit(p)
    # a product's consumers are read too: the lag check is about them
    for q in by_id.values():
        if any(i in seen for i in q.inputs) and q.id not in seen:
            seen[q.id] = q
    return list(seen.values())


def _connectors(wanted: Sequence[DataProduct], obs: Observed) -> None:
    for p in wanted:
        if p.kind == "cdc" and p.source is not None:
            name = names.connector(p.domain, p.source.database)
            if name not in obs.connectors:
                alive = running.pid_of(name) is not None
                obs.connectors[name] = Connector(name, running.status(name), alive)


def _job_states(jm: JobManager) -> dict[str, bool]:
    """Flink job name -> RUNNING (the newest job of each name)."""
    out: dict[str, bool] = {}
    for job in jm.jobs():  # newest first
        out.setdefault(job.name, job.state == "RUNNING")
    return out


def _sink_tables(
    wanted: Sequence[DataProduct], by_id: Mapping[str, DataProduct], catalog: Catalog, obs: Observed
) -> dict[str, Offsets]:
    """Iceberg sink id -> offsets its table committed (and its newest event time into obs)."""
    out: dict[str, Offsets] = {}
    for p in wanted:
        if p.kind != "iceberg_sink":
            continue
        try:
            table = catalog.load_table(".".join(names.iceberg_table(p)))
        except NoSuchTableError:
            out[p.id], obs.sink_event_ms[p.id] = {}, None
            continue
        out[p.id] = sink_offsets.committed(table, names.topic(by_id[p.inputs[0]]))
        obs.sink_event_ms[p.id] = sink_offsets.newest_event_ms(table)
        if heartbeat.sources(p.id, by_id):
            obs.heartbeats[p.id] = tuple(sink_offsets.heartbeat_arrivals(table))
    return out


def _pg_heartbeats(
    wanted: Sequence[DataProduct], by_id: Mapping[str, DataProduct], obs: Observed
) -> None:
    """The newest heartbeats each PostgreSQL sink's job wrote into its heartbeat table (and
    rows older than :data:`HEARTBEAT_KEEP_S` removed: the table stays small)."""
    for p in wanted:
        if p.kind != "postgres_sink" or p.sink is None or not heartbeat.sources(p.id, by_id):
            continue
        dsn = make_dsn(endpoints.endpoint("postgres"), dbname=p.sink.database)
        with contextlib.closing(psycopg2.connect(dsn, connect_timeout=int(TIMEOUT_S))) as db:
            db.autocommit = True
            with db.cursor() as cur:
                obs.heartbeats[p.id] = _sink_rows(cur, p)


def _sink_rows(cur: Any, p: DataProduct) -> tuple[heartbeat.Arrival, ...]:
    assert p.sink is not None
    table = f"{p.sink.pg_schema}.{heartbeat.SINK_TABLE}"
    cur.execute("SELECT to_regclass(%s)", (table,))
    if cur.fetchone()[0] is None:
        return ()
    cur.execute(
        f"DELETE FROM {table} WHERE sink = %s AND arrived_at < now() - %s * interval '1 second'",
        (p.id, HEARTBEAT_KEEP_S),
    )
    cur.execute(
        f"SELECT source, seq, op, commit_ms, (extract(epoch FROM arrived_at) * 1000)::bigint "
        f"FROM {table} WHERE sink = %s ORDER BY arrived_at DESC LIMIT %s",
        (p.id, LATENCY_SAMPLE),
    )
    return tuple(
        heartbeat.Arrival(heartbeat.Beat(src, int(seq), op or "", int(commit or 0)), int(at))
        for src, seq, op, commit, at in cur.fetchall()
    )


def _subjects(wanted: Sequence[DataProduct], registry: SchemaClient, obs: Observed) -> None:
    subjects = [names.value_subject(names.topic(p)) for p in wanted if p.is_kafka_backed]

    def read(subject: str) -> Subject:
        latest = registry.latest(subject)
        level = registry.level(subject)
        if latest is None:
            return Subject(None, None, level)
        return Subject(latest.schema, latest.version, level)

    with ThreadPoolExecutor(max_workers=8) as pool:
        obs.subjects.update(zip(subjects, pool.map(read, subjects), strict=True))


# -- Kafka ---------------------------------------------------------------------------------------


def _kafka(
    wanted: Sequence[DataProduct],
    by_id: Mapping[str, DataProduct],
    s: Systems,
    obs: Observed,
    jobs: dict[str, bool],
    sinks: dict[str, Offsets],
) -> None:
    config = s.kafka()
    admin = _admin(config)
    topics = {names.topic(p): p for p in wanted if p.is_kafka_backed}
    dlqs = {t for t in (dlq_topic(p) for p in wanted) if t is not None}
    ends = _end_offsets(admin, [*topics, *dlqs])
    for dlq in dlqs:
        obs.dead_letters[dlq] = sum(ends.get(dlq, {}).values())
    readers = _guard(obs, GROUPS, lambda: _readers(wanted, by_id, config, ends, jobs, sinks), {})
    consumer = Consumer(
        {
            **config,
            "group.id": "mesh-checks",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,  # the default 500 ms is held by the broker per assignment
        }
    )
    try:
        consumer.list_topics(timeout=TIMEOUT_S)  # all metadata once, not ~1 s per new topic
        decoder = Decoder(s.registry().by_id)
        beating = {t for t, p in topics.items() if heartbeat.sources(p.id, by_id)}
        depth = {
            t: LATENCY_SAMPLE if p.slo.latency_p99 is not None or t in beating else TAIL
            for t, p in topics.items()
        }
        starts = {
            (t, q): max(0, o - depth[t]) for t in topics for q, o in ends.get(t, {}).items() if o
        }
        tails = _read(consumer, starts)
        for topic, p in topics.items():
            end = ends.get(topic, {})
            tail = [m for q in end for m in tails.get((topic, q), [])]
            obs.topics[topic] = _topic(p, end, tail, decoder)
            if topic in beating:
                obs.heartbeats[p.id] = _arrivals(tail)
        obs.readers.update(_with_pending(consumer, readers, ends))
    finally:
        consumer.close()


_ADMINS: dict[tuple[tuple[str, str], ...], AdminClient] = {}
_ADMINS_LOCK = threading.Lock()


def _admin(config: dict[str, Any]) -> AdminClient:
    """One long-lived admin client per cluster config. Never dropped: librdkafka crashes the
    process when an admin client is destroyed with a request still in flight (seen when a
    group-offsets request to a cold broker timed out and the client went out of scope)."""
    key = tuple(sorted((k, str(v)) for k, v in config.items()))
    with _ADMINS_LOCK:
        if key not in _ADMINS:
            _ADMINS[key] = AdminClient(config)
        return _ADMINS[key]


def _end_offsets(admin: AdminClient, topics: Sequence[str]) -> dict[str, Offsets]:
    meta = admin.list_topics(timeout=TIMEOUT_S).topics
    parts = [
        TopicPartition(t, p)
        for t in topics
        if t in meta and meta[t].error is None
        for p in meta[t].partitions
    ]
    out: dict[str, Offsets] = {t: {} for t in topics if t in meta}
    if not parts:
        return out
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = admin.list_offsets({tp: latest for tp in parts}, request_timeout=TIMEOUT_S)
    wait(list(futures.values()), timeout=TIMEOUT_S + 5)
    for tp, fut in futures.items():
        out[tp.topic][tp.partition] = int(fut.result().offset)
    return out


def _readers(
    wanted: Sequence[DataProduct],
    by_id: Mapping[str, DataProduct],
    config: dict[str, Any],
    ends: dict[str, Offsets],
    jobs: dict[str, bool],
    sinks: dict[str, Offsets],
) -> dict[str, list[Reader]]:
    """Every consumer of every wanted topic, with what it committed."""
    groups = {
        names.flink_job(p): [
            TopicPartition(names.topic(by_id[i]), part)
            for i in p.inputs
            for part in ends.get(names.topic(by_id[i]), {})
        ]
        for p in wanted
        if p.kind in ("processor", "postgres_sink")
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(partial(_committed, config), groups.items())
        committed = dict(zip(groups, found, strict=True))
    out: dict[str, list[Reader]] = {}
    for p in wanted:
        for source in p.inputs:
            topic = names.topic(by_id[source])
            if p.kind == "iceberg_sink":
                reader = Reader(p.id, hop_of(p), topic, sinks.get(p.id, {}), True)
            else:
                job = names.flink_job(p)
                got = committed.get(job, {}).get(topic, {})
                reader = Reader(p.id, hop_of(p), topic, got, jobs.get(job, False))
            out.setdefault(topic, []).append(reader)
    return out


def _committed(
    config: dict[str, Any], group: tuple[str, list[TopicPartition]]
) -> dict[str, Offsets]:
    """A Flink job's committed offsets, asked as a member of its group would.

    Not ``AdminClient.list_consumer_group_offsets``: librdkafka dereferences a NULL consumer
    group when that request meets NOT_COORDINATOR (a cold or failing-over coordinator) and the
    whole process segfaults (librdkafka #5040, confluent-kafka-javascript #374; reproduced here
    on a fresh broker). A consumer has a group to retry through; ~50 ms each, run 8 at a time.
    """
    group_id, parts = group
    if not parts:
        return {}
    consumer = Consumer({**config, "group.id": group_id, "enable.auto.commit": False})
    deadline = time.monotonic() + 2 * TIMEOUT_S
    try:
        while True:
            try:
                found = consumer.committed(parts, timeout=TIMEOUT_S)
                break
            except KafkaException as exc:  # a coordinator still loading or moving: ask again
                if not exc.args[0].retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
    out: dict[str, Offsets] = {}
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
        if tp.offset >= 0:
            out.setdefault(tp.topic, {})[tp.partition] = tp.offset
    return out


def _with_pending(
    consumer: Consumer, readers: dict[str, list[Reader]], ends: dict[str, Offsets]
) -> dict[str, list[Reader]]:
    """Each reader with the Kafka timestamp of the first message it has not consumed.

    One read per distinct (topic, partition, committed offset), all in one assignment — more
    only when readers of one partition stand at different offsets.
    """

    def pending(r: Reader) -> list[tuple[str, int, int]]:
        end = ends.get(r.topic, {})
        return [(r.topic, q, r.committed.get(q, 0)) for q in end if r.committed.get(q, 0) < end[q]]

    wanted = {key for rs in readers.values() for r in rs for key in pending(r)}
    first: dict[tuple[str, int, int], int] = {}
    while wanted:
        batch: dict[tuple[str, int], int] = {}
        for topic, q, offset in sorted(wanted):
            batch.setdefault((topic, q), offset)
        got = _read(consumer, batch, first_only=True)
        for (topic, q), offset in batch.items():
            wanted.discard((topic, q, offset))
            if got.get((topic, q)):
                first[(topic, q, offset)] = got[(topic, q)][0].timestamp()[1]
    return {
        topic: [
            replace(
                r, oldest_pending_ms=min((first[k] for k in pending(r) if k in first), default=None)
            )
            for r in rs
        ]
        for topic, rs in readers.items()
    }


def _read(
    consumer: Consumer, start: dict[tuple[str, int], int], first_only: bool = False
) -> dict[tuple[str, int], list[Any]]:
    """Messages from ``start`` to the end of each (topic, partition), or only the first one;
    everything in one assignment."""
    if not start:
        return {}
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items()])
    got: dict[tuple[str, int], list[Any]] = {key: [] for key in start}
    remaining = set(got)
    deadline = time.monotonic() + TIMEOUT_S
    while remaining and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=0.05):
            err, key = msg.error(), (msg.topic(), msg.partition())
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                remaining.discard(key)
            elif err is not None:
                raise KafkaException(err)
            elif key in remaining:
                got[key].append(msg)
                if first_only:
                    remaining.discard(key)
    consumer.unassign()
    if remaining:
        raise TimeoutError(
            f"reading {len(remaining)} partitions did not finish in {TIMEOUT_S:.0f} s"
        )
    return got


def _topic(p: DataProduct, end: Offsets, tail: list[Any], decoder: Decoder) -> Topic:
    newest: int | None = None
    latencies: list[int] = []
    for m in tail:
        stamp = m.timestamp()[1]
        beat = heartbeat.decode(m.value())
        if beat is not None:  # synthetic: not an event (it counts in Observed.heartbeats)
            if p.kind == "cdc":  # but its commit -> publish is a latency sample
                latencies.append(max(0, stamp - beat.commit_ms))
            continue
        if p.kind != "cdc":
            newest = stamp if newest is None else max(newest, stamp)
            continue
        commit, op = _commit_ms(decoder, m.value())
        if commit is None:
            continue
        newest = commit if newest is None else max(newest, commit)
        if op != "r":  # snapshot reads have no commit to measure from
            latencies.append(max(0, stamp - commit))
    return Topic(end, newest, tuple(latencies))


def _arrivals(tail: list[Any]) -> tuple[heartbeat.Arrival, ...]:
    """The heartbeat records among a topic's newest records, arriving at their Kafka times."""
    out = []
    for m in tail:
        beat = heartbeat.decode(m.value())
        if beat is not None:
            out.append(heartbeat.Arrival(beat, m.timestamp()[1]))
    return tuple(out)


def _commit_ms(decoder: Decoder, value: bytes | None) -> tuple[int | None, str | None]:
    """Source commit time and op of a Debezium envelope (None for tombstones and bad records)."""
    if value is None:
        return None, None
    try:
        _, datum = decoder.decode(value)
    except UndecodableRecord:
        return None, None
    source = datum.get("source") or {}
    ts = source.get("ts_ms") or datum.get("ts_ms")
    return (int(ts) if ts is not None else None), datum.get("op")
