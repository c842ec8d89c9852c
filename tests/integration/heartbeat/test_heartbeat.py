"""Synthetic heartbeats on the real stack (:mod:`datamesh.heartbeat`).

Declared in YAML like any product: a CDC table with ``heartbeat: {every: 1s}``, a Flink processor
copying it, a ``postgres_sink`` of the copy and an Iceberg sink of the table, each with a short
freshness objective (8 s). The platform starts the connector, deploys the jobs and runs the sink;
the checks and observations are those of a ``mesh_slo_sensor`` tick.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg2.extensions import make_dsn

from datamesh import endpoints, heartbeat, names
from datamesh.cdc import running
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from mesh_assets import build_assets
from resources import resources_for
from resources.flink import FlinkResource
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from sensors.slo_sensor import build_slo_sensor
from tests.integration.sinks.conftest import Source

pytestmark = pytest.mark.integration

OWNER = "team:heartbeat-test"
FRESHNESS_S = 8
EVERY_S = 1
DDL = "CREATE TABLE items (id bigint PRIMARY KEY, name text)"
ITEM = {"type": "record", "name": "Item", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": None},
]}  # fmt: skip


@dataclass
class Tick:
    """One SLO sensor tick: check evaluations and heartbeat observations by asset name."""

    checks: dict[tuple[str, str], dg.AssetCheckEvaluation]
    observations: dict[str, dict[str, Any]]


@dataclass
class Mesh:
    src: Source
    products: tuple[DataProduct, ...]
    instance: dg.DagsterInstance

    def product(self, name: str) -> DataProduct:
        return next(p for p in self.products if p.name == name)

    def materialize(self, *product_names: str) -> None:
        keys = {dg.AssetKey([self.src.domain, n]) for n in product_names}
        assets = [
            a
            for a in build_assets(self.products)
            if isinstance(a, dg.AssetsDefinition) and a.key in keys
        ]
        result = dg.materialize(assets, resources=resources_for(), instance=self.instance)
        assert result.success

    def tick(self) -> Tick:
        [sensor] = build_slo_sensor(self.products)
        context = dg.build_sensor_context(instance=self.instance, resources=resources_for())
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        checks, observations = {}, {}
        for event in result.asset_events:
            if isinstance(event, dg.AssetCheckEvaluation):
                checks[(event.asset_key.path[-1], event.check_name)] = event
            else:
                assert isinstance(event, dg.AssetObservation)
                meta = {k: v.value for k, v in event.metadata.items()}
                observations[event.asset_key.path[-1]] = meta
            self.instance.report_runless_asset_event(event)
        return Tick(checks, observations)

    def sink_rows(self, query: str) -> list[tuple[Any, ...]]:
        dsn = make_dsn(endpoints.endpoint("postgres"), dbname="serving")
        with psycopg2.connect(dsn) as db, db.cursor() as cur:
            cur.execute(query)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows

    @property
    def serving_table(self) -> str:
        return f"public.{self.src.domain}_copy"


def _declare(folder: Path, src: Source) -> None:
    folder.mkdir(parents=True)
    (folder / "items.avsc").write_text(json.dumps(ITEM))
    (folder / "copy.avsc").write_text(json.dumps({**ITEM, "name": "ItemCopy"}))
    (folder / "copy.sql").write_text(f"SELECT id, name FROM `{src.domain}.items`\n")
    slo = {"freshness": f"{FRESHNESS_S}s"}
    declaration = {
        "domain": src.domain,
        "owners": [OWNER],
        "products": [
            {"name": "items", "kind": "cdc", "description": "test items",
             "source": {"database": src.database, "table": "public.items"},
             "schema": "items.avsc", "key": ["id"], "heartbeat": {"every": f"{EVERY_S}s"},
             "slo": {**slo, "latency_p99": "5s"}},
            {"name": "copy", "kind": "processor", "description": "a copy of the items",
             "inputs": [f"{src.domain}.items"], "sql": "copy.sql", "schema": "copy.avsc",
             "key": ["id"], "topic": {"cleanup_policy": "compact"}, "slo": slo},
            {"name": "serving", "kind": "postgres_sink", "description": "the copy, served",
             "inputs": [f"{src.domain}.copy"], "slo": slo,
             "sink": {"database": "serving", "table": f"public.{src.domain}_copy"}},
            {"name": "history", "kind": "iceberg_sink", "description": "the items in Iceberg",
             "inputs": [f"{src.domain}.items"], "slo": slo},
        ],
    }  # fmt: skip
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))


@pytest.fixture
def mesh(source: Callable[..., Source], tmp_path: Path) -> Iterator[Mesh]:
    src = source(DDL, capture=False)
    folder = tmp_path / "domains" / src.domain
    _declare(folder, src)
    with dg.DagsterInstance.ephemeral() as instance:
        m = Mesh(src, load_products(folder.parent), instance)
        m.materialize("items")  # the platform starts the connector, with its heartbeat
        try:
            yield m
        finally:
            jobs = FlinkResource().jobs()
            for name in ("copy", "serving"):
                jobs.cancel(names.flink_job(m.product(name)))
            running.stop(names.connector(src.domain, src.database))


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _topic_records(topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` up to its end when called (heartbeats never let it go quiet)."""
    consumer = Consumer({**KafkaResource().client_config(), "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out = []
        deadline = time.monotonic() + 30
        while todo and time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=1.0):
                if m.error() is not None or m.partition() not in todo:
                    continue
                out.append((m.key(), m.value()))
                if (m.offset() or 0) + 1 >= ends[m.partition()]:
                    todo.discard(m.partition())
        assert not todo, f"{topic}: partitions {todo} not read to their end in 30 s"
        return out
    finally:
        consumer.close()


def _beats(records: list[tuple[bytes | None, bytes | None]]) -> list[heartbeat.Beat]:
    return [b for _, v in records if (b := heartbeat.decode(v)) is not None]


def _fresh(tick: Tick, name: str) -> dg.AssetCheckEvaluation:
    e = tick.checks[(name, "freshness")]
    assert e.passed and e.metadata["state"].value == "fresh", (name, e.description, e.metadata)
    return e


def test_heartbeats_reach_every_hop_with_latencies_and_keep_idle_tables_fresh(mesh: Mesh) -> None:
    mesh.materialize("copy", "serving")
    mesh.src.run("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3) g")
    _wait(lambda: len(mesh.sink_rows(f"SELECT id FROM {mesh.serving_table}")) == 3, 120,
          "the three real rows in the PostgreSQL sink")  # fmt: skip
    time.sleep(FRESHNESS_S + 2)  # no real change since: every real event is older than the SLO
    mesh.materialize("history")  # the Iceberg sink reads rows and heartbeats
    stale = (  # a heartbeat row older than the hour the checks keep
        f"INSERT INTO public.{heartbeat.SINK_TABLE} (sink, source, seq, op, commit_ms, arrived_at) "
        f"VALUES ('{mesh.product('serving').id}', 'stale', 1, 'c', 1, now() - interval '2 hours') "
        "RETURNING seq"
    )
    assert mesh.sink_rows(stale) == [(1,)]

    tick = mesh.tick()
    kept = f"SELECT count(*) FROM public.{heartbeat.SINK_TABLE} WHERE source = 'stale'"
    assert mesh.sink_rows(kept) == [(0,)]
    items = _fresh(tick, "items")
    for name in ("copy", "serving", "history"):
        _fresh(tick, name)
    # fresh because of heartbeats: the newest real change is older than the objective
    newest_real = items.metadata["newest_event_time"].value
    assert isinstance(newest_real, str)
    assert time.time() - _epoch(newest_real) > FRESHNESS_S, newest_real
    newest_beat = items.metadata["newest_heartbeat"].value
    assert isinstance(newest_beat, str)
    assert time.time() - _epoch(newest_beat) <= FRESHNESS_S, newest_beat
    latency = tick.checks[("items", "latency_p99")]
    assert latency.passed and latency.metadata["state"].value == "ok", latency.description

    # per-hop latency observations on the CDC, processor and both sink assets
    for name in ("items", "copy", "serving", "history"):
        obs = tick.observations[name]
        assert obs["heartbeat_samples"] > 0, (name, obs)
        assert 0 <= obs["heartbeat_latency_ms_p50"] <= obs["heartbeat_latency_ms_p99"], (name, obs)
        assert obs["heartbeat_hop_latency_ms_p99"] >= 0, (name, obs)
    assert tick.observations["items"]["heartbeat_latency_ms_p99"] < 5000
    assert tick.observations["copy"]["heartbeat_hop_latency_ms_p99"] < 10_000

    # the synthetic events went through every hop, in turn insert, update and delete...
    items_topic = names.topic(mesh.product("items"))
    copied = _beats(_topic_records(names.topic(mesh.product("copy"))))  # first: it is behind
    cdc_beats = _beats(_topic_records(items_topic))
    assert {b.op for b in cdc_beats} == {"c", "u", "d"}
    assert copied and {b.source for b in copied} == {items_topic}
    assert {b.seq for b in copied} <= {b.seq for b in cdc_beats}
    pg = mesh.sink_rows(
        f"SELECT source, seq FROM public.{heartbeat.SINK_TABLE} WHERE sink = "
        f"'{mesh.product('serving').id}'"
    )
    assert pg and {s for s, _ in pg} == {items_topic}
    # ...but are never rows of a sink table, nor dead letters of the jobs
    assert sorted(mesh.sink_rows(f"SELECT id, name FROM {mesh.serving_table}")) == [
        (i, f"item {i}") for i in (1, 2, 3)
    ]
    history = IcebergResource().catalog().load_table(f"{mesh.src.domain}.history")
    assert sorted(r["id"] for r in history.scan().to_arrow().to_pylist()) == [1, 2, 3]
    before = history.current_snapshot()
    time.sleep(2 * EVERY_S)
    mesh.materialize("history")  # heartbeats only since: a snapshot that moves the offsets
    history = IcebergResource().catalog().load_table(f"{mesh.src.domain}.history")
    after = history.current_snapshot()
    assert before is not None and after is not None and after.snapshot_id != before.snapshot_id
    assert after.summary is not None and after.summary[heartbeat.SNAPSHOT_PROPERTY]
    assert sorted(r["id"] for r in history.scan().to_arrow().to_pylist()) == [1, 2, 3]
    for name in ("copy", "serving"):
        assert tick.checks[(name, "dead_letters")].passed, tick.checks[(name, "dead_letters")]


def test_a_cancelled_job_fails_the_heartbeat_freshness_of_its_outputs_within_the_slo(
    mesh: Mesh,
) -> None:
    mesh.materialize("copy", "serving")
    _wait(lambda: mesh.tick().checks[("serving", "freshness")].passed, 120,
          "heartbeats through the processor into the PostgreSQL sink")  # fmt: skip
    copy = mesh.product("copy")
    FlinkResource().jobs().cancel(names.flink_job(copy))
    cancelled = time.monotonic()
    failed: dict[str, float] = {}
    deadline = cancelled + FRESHNESS_S + 30
    tick = mesh.tick()
    while len(failed) < 2 and time.monotonic() < deadline:
        tick = mesh.tick()
        for name in ("copy", "serving"):
            if name not in failed and not tick.checks[(name, "freshness")].passed:
                failed[name] = time.monotonic() - cancelled
        time.sleep(0.5)
    assert set(failed) == {"copy", "serving"}, failed
    # the last heartbeat through the job was at most one interval old when it stopped; an
    # evaluation takes a few seconds on a loaded machine
    assert max(failed.values()) <= FRESHNESS_S + EVERY_S + 8, failed
    e = tick.checks[("copy", "freshness")]
    assert e.metadata["state"].value == "stuck"
    assert names.flink_job(copy) in str(e.metadata["likely_hop"].value)
    assert tick.checks[("items", "freshness")].passed  # upstream of the stopped job: still fresh


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_declaring_a_heartbeat_restarts_a_running_connector_with_it(
    source: Callable[..., Source], tmp_path: Path
) -> None:
    src = source(DDL, capture=False)
    folder = tmp_path / "domains" / src.domain
    _declare(folder, src)
    quiet = tmp_path / "quiet" / src.domain
    shutil.copytree(folder, quiet)
    (quiet / "products.yaml").write_text(_without_heartbeat((folder / "products.yaml").read_text()))
    connector = names.connector(src.domain, src.database)
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            Mesh(src, load_products(quiet.parent), instance).materialize("items")
            assert running.heartbeats(connector) == ()
            topic = f"{src.domain}.public.items"
            time.sleep(3 * EVERY_S)
            assert not _beats(_topic_records(topic))
            Mesh(src, load_products(folder.parent), instance).materialize("items")
            assert running.heartbeats(connector) == (("public.items", float(EVERY_S)),)
            _wait(lambda: bool(_beats(_topic_records(topic))), 30,
                  "heartbeats once declared")  # fmt: skip
        finally:
            running.stop(connector)


def _without_heartbeat(text: str) -> str:
    data = yaml.safe_load(text)
    for p in data["products"]:
        p.pop("heartbeat", None)
    return yaml.safe_dump(data, sort_keys=False)
