"""Checks figures: one SLO evaluation of 200 generated products against the running stack, and
``mesh catalog search`` over 1,000 generated products.

The 200 products are the demo declarations copied with :func:`dataclasses.replace` (so their
schemas, topic settings and sink settings are the real ones): 50 CDC products in 5 domains x 2
source databases (10 connectors, status files written as a streaming connector writes them, no
process behind them), 100 processors reading one or two of the earlier Kafka products, 30
Iceberg sinks (5 with a table and a committed snapshot) and 20 PostgreSQL sinks. Every topic
holds a few Confluent-framed Avro records: Debezium envelopes
(:func:`datamesh.cdc.schemas.envelope_schema`, registered like the connector registers them) on
CDC topics, the declared record on processor topics, a few dead letters on some DLQs. No Flink
job runs, so every job reads "not running" and its group has committed nothing.

- ``evaluate_all_ms``: one ``evaluate_products(all 200)`` (what a ``mesh_slo_sensor`` tick
  does), median of 3 after a warm-up whose evaluations are stored in an ephemeral instance (the
  timed runs then read previous dead letters as a real tick does); split once into
  ``gather_ms`` / ``previous_dead_letters_ms`` / ``evaluate_ms``.
- ``raw_offsets_ms``: the Kafka floor of the same reads, one ``list_topics`` + one
  ``list_offsets`` of every partition gather looks at, with confluent-kafka alone.
- ``catalog_search_ms``: :func:`bench.catalog_bench.run`'s p50 per query over 1,000 products;
  ``catalog_health_ms``: p50 of ``health(top-10 results)`` against an instance directory holding
  evaluations of half the products those searches return.

Everything created (topics, subjects, tables, status files) is removed at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import random
import shutil
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import fastavro
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]

from bench import catalog_bench
from datamesh import names
from datamesh.catalog.ranking import index, search
from datamesh.cdc import running
from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schemas import TableShape, envelope_schema
from datamesh.cdc.status import Status, write_status
from datamesh.checks.evaluate import checks_for, dlq_topic, evaluate
from datamesh.checks.gather import gather
from datamesh.checks.outcome import Outcome
from datamesh.control import connectors
from datamesh.schema_client import SchemaClient
from datamesh.sinks.offsets import event_property, summary_property
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct, Slo
from mesh_assets import DOMAINS_DIR
from mesh_assets.checks import evaluate_products, evaluations, previous_dead_letters, systems
from mesh_assets.cli_entry import catalog_health as health
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource

CDC, PROCESSORS, ICEBERG, POSTGRES = 50, 100, 30, 20
DOMAINS, DATABASES, TABLES_WITH_DATA = 5, 2, 5
CDC_PER_PARTITION, RECORDS_PER_TOPIC = 10, 5
RUNS = 3
HEALTH_QUERIES = 20
COLUMNS = (  # public.movies of the demo: bigint, text, text, int4, timestamp
    Column(True, "id", 20, -1),
    Column(False, "title", 25, -1),
    Column(False, "status", 25, -1),
    Column(False, "release_year", 23, -1),
    Column(False, "updated_at", 1114, -1),
)
_FRAME = struct.Struct(">bI")


def log(message: str) -> None:
    """A progress line (the area takes a minute or two)."""
    print(f"  checks: {message}", flush=True)


# -- the products ---------------------------------------------------------------------------


def generate(prefix: str, seed: int = 7) -> tuple[DataProduct, ...]:
    """200 products named under ``prefix``: 50 CDC, 100 processors, 30 + 20 sinks."""
    demo = {p.id: p for p in load_products(DOMAINS_DIR)}
    rng = random.Random(seed)
    out = [_cdc(demo["studio.movies"], prefix, i) for i in range(CDC)]
    for j in range(PROCESSORS):
        inputs = tuple(rng.sample([p.id for p in out], 1 + j % 2))
        slo = Slo(timedelta(minutes=10), 20_000 if j % 2 == 0 else None)
        out.append(_copy(demo["studio.movie_catalog"], prefix, j, f"proc{j}", inputs, slo))
    kafka = [p.id for p in out]
    for k in range(ICEBERG):
        slo = Slo(timedelta(hours=1), 50_000 if k % 3 == 0 else None)
        bad = "dlq" if k % 5 == 0 else "fail"
        lake = _copy(
            demo["studio.movies_history"], prefix, k, f"lake{k}", (rng.choice(kafka),), slo
        )
        out.append(_with_sink(lake, on_bad_record=bad))
    for k in range(POSTGRES):
        slo = Slo(timedelta(minutes=15), 50_000 if k % 2 == 0 else None)
        template = demo["content.localized_titles_serving"]
        serve = _copy(template, prefix, k, f"serve{k}", (rng.choice(kafka),), slo)
        out.append(_with_sink(serve, table=f"public.{serve.name}"))
    return tuple(out)


def _copy(
    template: DataProduct, prefix: str, i: int, name: str, inputs: tuple[str, ...], slo: Slo
) -> DataProduct:
    domain = f"{prefix}{i % DOMAINS}"
    return dataclasses.replace(
        template, domain=domain, name=name, inputs=inputs, slo=slo, consumes={}
    )


def _with_sink(p: DataProduct, **changes: Any) -> DataProduct:
    assert p.sink is not None
    return dataclasses.replace(p, sink=dataclasses.replace(p.sink, **changes))


def _cdc(template: DataProduct, prefix: str, i: int) -> DataProduct:
    latency = timedelta(seconds=1) if i % 2 == 0 else None
    p = _copy(template, prefix, i, f"src{i}", (), Slo(timedelta(minutes=5), 10_000, latency))
    database = f"db{(i // DOMAINS) % DATABASES}"
    assert p.source is not None
    return dataclasses.replace(
        p, source=dataclasses.replace(p.source, database=database, table=f"t{i}")
    )


# -- the systems they live in ---------------------------------------------------------------


def provision(
    products: Sequence[DataProduct], config: dict[str, Any], registry: SchemaClient
) -> None:
    """Topics (and DLQs), registered value schemas, records, connector status files, tables."""
    admin = AdminClient(config)
    topics = [NewTopic(names.topic(p), p.topic.partitions, 1) for p in products if p.topic]
    topics += [NewTopic(t, 1, 1) for t in _dlqs(products)]
    for future in admin.create_topics(topics, operation_timeout=30).values():
        future.result()
    log(f"created {len(topics)} topics")
    producer = Producer({**config, "linger.ms": 20})
    for p in products:
        if p.kind == "cdc":
            _produce_changes(producer, registry, p)
        elif p.kind == "processor":
            _produce_rows(producer, registry, p)
    for dlq in _dlqs(products)[::10]:  # two dead letters on every tenth
        producer.produce(dlq, b"not avro")
        producer.produce(dlq, b"not avro either")
    if producer.flush(60):
        raise RuntimeError("records not acknowledged within 60 s")
    log("registered the value subjects and produced the records")
    _write_statuses(products)
    sinks = [p for p in products if p.kind == "iceberg_sink"][:TABLES_WITH_DATA]
    _create_tables(sinks, {p.id: p for p in products})


def _dlqs(products: Sequence[DataProduct]) -> list[str]:
    return [t for t in (dlq_topic(p) for p in products) if t is not None]


def _framed(schema_id: int, parsed: Any, datum: dict[str, Any]) -> bytes:
    """Confluent framing: magic 0, 4-byte big-endian schema id, Avro body."""
    out = io.BytesIO()
    out.write(_FRAME.pack(0, schema_id))
    fastavro.schemaless_writer(out, parsed, datum)
    return out.getvalue()


def _produce_changes(producer: Producer, registry: SchemaClient, p: DataProduct) -> None:
    """Debezium envelopes committed 50-500 ms before they are published; a few snapshot reads."""
    assert p.source is not None and p.topic is not None
    topic = names.topic(p)
    schema = envelope_schema(topic, TableShape("public", p.source.table, COLUMNS, ("id",)))
    schema_id = registry.register(names.value_subject(topic), schema).id
    parsed = fastavro.parse_schema(schema)
    rng, now = random.Random(topic), int(time.time() * 1000)
    for n in range(CDC_PER_PARTITION * p.topic.partitions):
        row = {"id": n, "title": f"movie {n}", "status": "production", "release_year": 2024,
               "updated_at": datetime.now(UTC)}  # fmt: skip
        source = {"version": "bench", "connector": "postgresql", "name": p.domain,
                  "ts_ms": now - rng.randint(50, 500), "db": p.source.database,
                  "schema": "public", "table": p.source.table, "lsn": n}  # fmt: skip
        op = "r" if n < 3 else "u"
        value = {"before": None, "after": row, "source": source, "op": op, "ts_ms": now}
        producer.produce(topic, _framed(schema_id, parsed, value), str(n), n % p.topic.partitions)


def _produce_rows(producer: Producer, registry: SchemaClient, p: DataProduct) -> None:
    assert p.value_schema is not None
    topic = names.topic(p)
    schema_id = registry.register(names.value_subject(topic), p.value_schema).id
    parsed = fastavro.parse_schema(p.value_schema)
    for n in range(RECORDS_PER_TOPIC):
        row = {"movie_id": n, "title": f"movie {n}", "status": "production"}
        producer.produce(topic, _framed(schema_id, parsed, row), str(n))


def _write_statuses(products: Sequence[DataProduct]) -> None:
    """What a streaming connector writes every second (there is no process: reads not alive)."""
    for spec in connectors.plan(products):
        tables = {t: {"topic": f"{spec.domain}.{t}", "events": 30} for t in spec.tables}
        status = Status(spec.name, f"slot_{spec.domain}", spec.database, state="streaming",
                        slot_lag_bytes=4096, tables=tables)  # fmt: skip
        write_status(running.workdir(spec.name) / "status.json", status)


def _create_tables(sinks: Sequence[DataProduct], by_id: dict[str, DataProduct]) -> None:
    """Sink tables with one snapshot that records offsets and a newest event time."""
    catalog = IcebergResource().catalog()
    now = int(time.time() * 1000)
    for p in sinks:
        namespace, table = names.iceberg_table(p)
        catalog.create_namespace_if_not_exists(namespace)
        rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
        created = catalog.create_table(f"{namespace}.{table}", schema=rows.schema)
        topic = names.topic(by_id[p.inputs[0]])
        props = {**summary_property(topic, {0: 3}), **event_property(None, now - 60_000)}
        created.append(rows, snapshot_properties=props)
    log(f"created {len(sinks)} Iceberg sink tables")


def cleanup(
    products: Sequence[DataProduct], config: dict[str, Any], registry: SchemaClient
) -> None:
    """Remove what :func:`provision` created (best effort: the bench stack is private anyway)."""
    topics = [names.topic(p) for p in products if p.is_kafka_backed] + _dlqs(products)
    for future in AdminClient(config).delete_topics(topics, operation_timeout=30).values():
        with contextlib.suppress(KafkaException):
            future.result()
    for p in products:
        if p.is_kafka_backed:
            with contextlib.suppress(Exception):
                registry.client.delete_subject(names.value_subject(names.topic(p)))
    catalog = IcebergResource().catalog()
    for p in products:
        ident = ".".join(names.iceberg_table(p))
        if p.kind == "iceberg_sink" and catalog.table_exists(ident):
            catalog.drop_table(ident)
    for spec in connectors.plan(products):
        shutil.rmtree(running.workdir(spec.name), ignore_errors=True)


# -- the figures ----------------------------------------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _unreachable(pairs: Sequence[tuple[DataProduct, Outcome]]) -> int:
    return sum(o.state == "could not evaluate" for _, o in pairs)


def evaluation_figures(products: Sequence[DataProduct]) -> dict[str, Any]:
    """One evaluation of every product: median of RUNS after a stored warm-up, and its parts."""
    by_id = {p.id: p for p in products}
    s = systems(KafkaResource(), SchemaRegistryResource(), IcebergResource())
    with dg.DagsterInstance.ephemeral() as instance:
        warm_s, pairs = _timed(lambda: evaluate_products(products, by_id, instance, s))
        for event in evaluations(pairs):  # as the daemon stores a tick's evaluations
            instance.report_runless_asset_event(event)
        log(f"warm-up {warm_s * 1000:.0f} ms, {len(pairs)} checks ({_unreachable(pairs)} could "
            f"not evaluate: a cold broker), stored; {RUNS} timed evaluations follow")  # fmt: skip
        runs = []
        for n in range(RUNS):
            run_s, pairs = _timed(lambda: evaluate_products(products, by_id, instance, s))
            runs.append(run_s)
            log(f"evaluation {n + 1}/{RUNS}: {run_s * 1000:.0f} ms")
        gather_s, observed = _timed(lambda: gather(products, by_id, s))
        previous_s, previous = _timed(lambda: previous_dead_letters(instance, products))
        evaluate_s, _ = _timed(lambda: evaluate(products, by_id, observed, previous))
    log(f"gather {gather_s * 1000:.0f} ms; systems that did not answer: {observed.errors}")
    return {
        "evaluate_all_ms": round(statistics.median(runs) * 1000, 1),
        "gather_ms": round(gather_s * 1000, 1),
        "previous_dead_letters_ms": round(previous_s * 1000, 1),
        "evaluate_ms": round(evaluate_s * 1000, 1),
        "checks_evaluated": len(pairs),
        "failing_checks": sum(not o.passed for _, o in pairs),  # no Flink job runs: most fail
        "unreachable_checks": _unreachable(pairs),  # must be 0 for the figure to mean anything
        "products": len(products),
    }


def _kafka_topics(products: Sequence[DataProduct]) -> list[str]:
    return [names.topic(p) for p in products if p.is_kafka_backed]


def raw_offsets_s(products: Sequence[DataProduct], config: dict[str, Any]) -> float:
    """The Kafka floor: end offsets of every partition gather reads (topics and DLQs), one
    metadata call and one ``list_offsets``, on an admin client already connected (gather's is
    long-lived too); median of RUNS."""
    topics = _kafka_topics(products) + _dlqs(products)
    admin = AdminClient(config)
    admin.list_topics(timeout=10)
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        meta = admin.list_topics(timeout=10).topics
        parts = [TopicPartition(t, q) for t in topics if t in meta for q in meta[t].partitions]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets({tp: latest for tp in parts}, request_timeout=10)
        for future in futures.values():
            future.result()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def raw_reads_s(products: Sequence[DataProduct], config: dict[str, Any]) -> float:
    """The floor of gather's record reads: a new consumer reads every partition of every
    product topic from its beginning to its end (a superset of the tails and first pending
    records gather reads) in one assignment, its metadata asked once and fetches not held by
    the broker (``fetch.wait.max.ms`` 10); median of RUNS."""
    topics = _kafka_topics(products)
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        consumer = Consumer({**config, "group.id": "bench-raw-reads", "enable.auto.commit": False,
                             "enable.partition.eof": True, "fetch.wait.max.ms": 10})  # fmt: skip
        meta = consumer.list_topics(timeout=10).topics
        consumer.assign([TopicPartition(t, q, 0) for t in topics for q in meta[t].partitions])
        remaining = {(t, q) for t in topics for q in meta[t].partitions}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.05):
                err = msg.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    remaining.discard((msg.topic(), msg.partition()))
        consumer.close()
        if remaining:
            raise TimeoutError(f"{len(remaining)} partitions not read to their end within 60 s")
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def catalog_health_s(home: Path) -> float:
    """p50 of ``health(top-10 results)`` over HEALTH_QUERIES searches of the catalog bench's
    1,000 products; half the products those searches return have stored evaluations."""
    products = catalog_bench.generate()
    by_id, idx = {p.id: p for p in products}, index(products)
    queries = catalog_bench.queries(products, count=HEALTH_QUERIES)
    tops = [[by_id[r.id] for r in search(idx, q, limit=10)] for q in queries]
    evaluated = sorted({p.id for top in tops for p in top})[::2]
    _store_evaluations(home, [by_id[i] for i in evaluated])
    log(f"stored evaluations of {len(evaluated)} catalog products in {home}")
    times = []
    for top in tops:
        start = time.perf_counter()
        health(top, home=home)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _store_evaluations(home: Path, products: Sequence[DataProduct]) -> None:
    rng = random.Random(3)
    pairs = [
        (p, Outcome(check, passed, "ok" if passed else "over", "bench"))
        for p in products
        for check in checks_for(p)
        for passed in [rng.random() > 0.2]
    ]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for event in evaluations(pairs):
            instance.report_runless_asset_event(event)


def run() -> dict[str, Any]:
    """``{"checks": {...}}``: one evaluation of 200 products against its Kafka floor, and the
    catalog's search and health figures."""
    kafka, registry = KafkaResource().client_config(), SchemaRegistryResource().client()
    products = generate(f"ck{uuid.uuid4().hex[:6]}")
    log(f"generated {len(products)} products; provisioning")
    try:
        provision(products, kafka, registry)
        figures = evaluation_figures(products)
        raw_s, reads_s = raw_offsets_s(products, kafka), raw_reads_s(products, kafka)
    finally:
        cleanup(products, kafka, registry)
    all_ms = figures["evaluate_all_ms"]
    # how many raw end-offset reads of the same partitions one evaluation costs: >= 1, lower is
    # better (unlike the other areas' <= 1 "share of the floor" ratios); the evaluation also
    # reads records, group offsets, the registry, Flink and Iceberg, hence the second floor
    figures["raw_offsets_ms"] = round(raw_s * 1000, 2)
    figures["ratio_vs_raw_offsets"] = round(all_ms / (raw_s * 1000), 1)
    figures["raw_reads_ms"] = round(reads_s * 1000, 1)
    figures["ratio_vs_raw_reads"] = round(all_ms / (reads_s * 1000), 1)
    log("catalog search over 1,000 products")
    figures["catalog_search_ms"] = catalog_bench.run()["catalog"]["search_ms"]
    with tempfile.TemporaryDirectory(prefix="checks-health-") as home:
        figures["catalog_health_ms"] = round(catalog_health_s(Path(home)) * 1000, 1)
    return {"checks": figures}


if __name__ == "__main__":
    print(run())
