"""Heartbeat figures (area ``audit``): end-to-end latency of synthetic heartbeats at rest.

A pipeline declared like any domain's — a CDC table with ``heartbeat: {every: 1s}``, a Flink
processor copying it and a ``postgres_sink`` of the copy — is materialized on the running stack
through the Dagster assets (the connector, both Flink jobs and the sink table as the platform
makes them). With no real change at all, every heartbeat committed during :data:`WINDOW_S`
seconds is followed to each hop (:mod:`datamesh.heartbeat`):

- ``heartbeat_e2e_p50_ms`` / ``_p99_ms``: source commit -> row in the PostgreSQL sink's heartbeat
  table (the last hop: connector, CDC topic, processor, output topic, sink job, PostgreSQL);
- ``heartbeat_cdc_p50_ms`` / ``_p99_ms``: source commit -> CDC topic (the connector alone);
- ``heartbeat_processor_p50_ms`` / ``_p99_ms``: source commit -> the processor's output topic.

Everything created (database, connector, jobs, sink rows) is removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
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
from resources.kafka import KafkaResource

WINDOW_S = 60
EVERY_S = 1
ITEM = {"type": "record", "name": "Item", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": None},
]}  # fmt: skip


def run() -> dict[str, Any]:
    """Figures of the heartbeat area (a flat dict; see the module docstring)."""
    tag = uuid.uuid4().hex[:8]
    database, domain = f"hb_{tag}", f"hb{tag}"
    admin = psycopg2.connect(endpoints.endpoint("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    products: tuple[DataProduct, ...] = ()
    try:
        _sql(database, "CREATE TABLE items (id bigint PRIMARY KEY, name text)")
        _sql(database, "INSERT INTO items VALUES (1, 'one')")
        with tempfile.TemporaryDirectory() as tmp:
            products = _declare(Path(tmp), domain, database)
            with dg.DagsterInstance.ephemeral() as instance:
                _materialize(products, instance, "items", "copy", "serving")
            return _measure(products)
    finally:
        _clean(products, domain, database, admin)


def _sql(database: str, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement in ``database`` (committed); its rows."""
    dsn = make_dsn(endpoints.endpoint("postgres"), dbname=database)
    with contextlib.closing(psycopg2.connect(dsn)) as db, db, db.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall() if cur.description else []


def _declare(root: Path, domain: str, database: str) -> tuple[DataProduct, ...]:
    folder = root / domain
    folder.mkdir(parents=True)
    (folder / "items.avsc").write_text(json.dumps(ITEM))
    (folder / "copy.avsc").write_text(json.dumps({**ITEM, "name": "ItemCopy"}))
    (folder / "copy.sql").write_text(f"SELECT id, name FROM `{domain}.items`\n")
    declaration = {
        "domain": domain,
        "owners": ["team:bench"],
        "products": [
            {"name": "items", "kind": "cdc", "description": "bench items",
             "source": {"database": database, "table": "public.items"}, "schema": "items.avsc",
             "key": ["id"], "heartbeat": {"every": f"{EVERY_S}s"}},
            {"name": "copy", "kind": "processor", "description": "a copy", "key": ["id"],
             "inputs": [f"{domain}.items"], "sql": "copy.sql", "schema": "copy.avsc",
             "topic": {"cleanup_policy": "compact"}},
            {"name": "serving", "kind": "postgres_sink", "description": "the copy, served",
             "inputs": [f"{domain}.copy"],
             "sink": {"database": "serving", "table": f"public.{domain}_copy"}},
        ],
    }  # fmt: skip
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    return load_products(root)


def _materialize(
    products: tuple[DataProduct, ...], instance: dg.DagsterInstance, *wanted: str
) -> None:
    keys = {dg.AssetKey([p.domain, p.name]) for p in products if p.name in wanted}
    assets = [
        a for a in build_assets(products) if isinstance(a, dg.AssetsDefinition) and a.key in keys
    ]
    assert dg.materialize(assets, resources=resources_for(), instance=instance).success


def _measure(products: tuple[DataProduct, ...]) -> dict[str, Any]:
    by_name = {p.name: p for p in products}
    serving = by_name["serving"]
    _await(lambda: bool(_sink_arrivals(serving, 0)), 180, "a heartbeat in the sink's table")
    start_ms = int(time.time() * 1000)
    time.sleep(WINDOW_S)
    end_ms = start_ms + WINDOW_S * 1000  # beats committed in the window; read after it settles
    time.sleep(5)
    hops = {
        "cdc": _topic_arrivals(names.topic(by_name["items"])),
        "processor": _topic_arrivals(names.topic(by_name["copy"])),
        "e2e": list(_sink_arrivals(serving, start_ms)),
    }
    out: dict[str, Any] = {}
    for hop, arrivals in hops.items():
        inside = [a for a in arrivals if start_ms <= a.beat.commit_ms < end_ms]
        figures = heartbeat.hop_latency(inside, None)
        out[f"heartbeat_{hop}_p50_ms"] = figures.e2e_p50_ms
        out[f"heartbeat_{hop}_p99_ms"] = figures.e2e_p99_ms
        out[f"heartbeat_{hop}_samples"] = figures.samples
    out["heartbeat_every_s"] = EVERY_S
    out["heartbeat_window_s"] = WINDOW_S
    return out


def _topic_arrivals(topic: str) -> list[heartbeat.Arrival]:
    """The heartbeats of ``topic`` up to its end when called (it never goes quiet)."""
    consumer = Consumer({**KafkaResource().client_config(), "group.id": f"bench-{uuid.uuid4()}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in parts}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out = []
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=1.0):
                if m.error() is not None or m.partition() not in todo:
                    continue
                beat = heartbeat.decode(m.value())
                if beat is not None:
                    out.append(heartbeat.Arrival(beat, m.timestamp()[1]))
                if (m.offset() or 0) + 1 >= ends[m.partition()]:
                    todo.discard(m.partition())
        return out
    finally:
        consumer.close()


def _sink_arrivals(serving: DataProduct, since_ms: int) -> list[heartbeat.Arrival]:
    if not _sql("serving", "SELECT to_regclass(%s)", (f"public.{heartbeat.SINK_TABLE}",))[0][0]:
        return []
    rows = _sql(
        "serving",
        "SELECT source, seq, op, commit_ms, (extract(epoch FROM arrived_at) * 1000)::bigint "
        f"FROM public.{heartbeat.SINK_TABLE} WHERE sink = %s AND commit_ms >= %s",
        (serving.id, since_ms),
    )
    return [
        heartbeat.Arrival(heartbeat.Beat(s, int(q), o, int(c)), int(at)) for s, q, o, c, at in rows
    ]


def _await(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise TimeoutError(f"bench heartbeat: no {what} after {timeout_s:.0f} s")


def _clean(products: tuple[DataProduct, ...], domain: str, database: str, admin: Any) -> None:
    jobs = FlinkResource().jobs()
    for p in products:
        if p.kind in ("processor", "postgres_sink"):
            jobs.cancel(names.flink_job(p))
    running.stop(names.connector(domain, database))
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s AND NOT active",
            (database,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin.close()
    with contextlib.suppress(psycopg2.Error):  # no "serving" database: the sink never started
        _sql("serving", f"DROP TABLE IF EXISTS public.{domain}_copy")
        table = f"public.{heartbeat.SINK_TABLE}"
        if _sql("serving", "SELECT to_regclass(%s)", (table,))[0][0]:
            _sql("serving", f"DELETE FROM {table} WHERE sink = %s", (f"{domain}.serving",))
