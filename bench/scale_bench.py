"""How the platform's costs grow with the mesh (area ``scale``), each size beside its baseline.

- ``cdc_<k>_tables_changes_per_s`` (k = 1, 4, 8): one connector draining a backlog of
  :data:`CDC_CHANGES` inserts spread evenly over k captured tables of one database (first to
  last broker append time over all k topics); baseline ``raw_decoding_<k>_tables_changes_per_s``:
  a second slot on the same publication decoded (pgoutput) and counted, nothing produced.
- ``sink_apply_<size>_s`` (10k, 100k, 1m rows): the Iceberg sink applying one batch of
  :data:`SINK_MIX` changes (creates, updates, deletes spread over the whole key range) to a
  table of that size (:mod:`bench.sink_bench`'s table and envelopes); baseline
  ``parquet_rewrite_<size>_s``: pyarrow alone reading and rewriting the table's data file,
  the floor of copy-on-write, which rewrites every data file holding a touched key.
- ``flink_tm_rss_<j>_jobs_mb`` (j = 0, 1, 3): the TaskManager's resident memory with j running
  projection jobs (each reading its own topic of Avro events); ``flink_mb_per_job`` is the
  growth per job, ``ratio_vs_idle_tm`` that growth over the idle TaskManager.
- ``sensor_sweep_<n>_topics_ms`` (n = 10, 100, 500): one tick of every topic sensor (end offsets,
  the cursor decision, a ``SensorResult``), one sensor per topic as in the code location;
  baseline ``raw_watermarks_<n>_topics_ms``: a bare consumer reading the same watermarks.

Definitions load and no-op ``plan`` at 10 / 100 / 1,000 products are the ``control_plane``
area's figures (:mod:`bench.control_plane_bench`), measured in the same ``make bench`` run.
REPORT.md shows each curve as a table with its growth (:mod:`bench.scale_report`).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import psutil
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import cdc_bench, flink_bench, sink_bench
from datamesh.cdc import supervisor
from datamesh.flink import FlinkJobs, JobSettings, ProcessorJob
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.job import InputTable
from datamesh.flink.jobmanager import JobManager
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings
from datamesh.stack import state
from datamesh.topic_apply import ensure_topic
from resources.kafka import KafkaResource
from sensors.decide import decide, dump_cursor, parse_cursor

CDC_TABLES = (1, 4, 8)
CDC_CHANGES = 80_000  # inserts per run, divided evenly among the tables
SINK_SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
SINK_MIX = (600, 300, 100)  # creates, updates, deletes: one batch of 1,000 changes
FLINK_JOBS = (0, 1, 3)
FLINK_EVENTS = 20_000
SENSOR_TOPICS = (10, 100, 500)
SENSOR_PARTITIONS = 3  # the platform's default for a product topic
SENSOR_TICKS = 5


def log(message: str) -> None:
    """A progress line (the area takes several minutes)."""
    print(f"  scale: {message}", flush=True)


def run() -> dict[str, dict[str, Any]]:
    """Every curve; see the module docstring."""
    figures: dict[str, Any] = {}
    figures |= cdc_curve()
    figures |= sink_curve()
    figures |= flink_memory()
    figures |= sensor_curve(client_config(resolve().bootstrap))
    return {"scale": figures}


# -- the CDC connector: 1 / 4 / 8 captured tables -----------------------------------------------


def cdc_curve() -> dict[str, float]:
    out: dict[str, float] = {}
    for k in CDC_TABLES:
        log(f"cdc: {CDC_CHANGES:,} changes over {k} table(s)")
        with cdc_bench.bench_database() as bench:
            rate, raw = _cdc_run(bench, k)
        out[f"cdc_{k}_tables_changes_per_s"] = round(rate)
        out[f"raw_decoding_{k}_tables_changes_per_s"] = round(raw)
        out[f"ratio_vs_raw_decoding_{k}_tables"] = round(rate / raw, 3)
    return out


def _cdc_run(bench: cdc_bench.Bench, k: int) -> tuple[float, float]:
    tables = tuple(bench.table(f"scale{k}") for _ in range(k))
    topics = [f"{cdc_bench.DOMAIN}.{t}" for t in tables]
    for topic in topics:
        bench.log_append_topic(topic)
    config = bench.config(tables)
    # the slot and the publication first
    supervisor.stop_connector(cdc_bench.start_connector(bench, config))
    raw_slot = f"scale_raw_{uuid.uuid4().hex[:6]}"
    bench.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (raw_slot,))
    per = CDC_CHANGES // k
    for table in tables:
        for start in range(0, per, 20_000):
            bench.sql(
                f"INSERT INTO {table} SELECT g, 'title ' || g, 1900 + g %% 120, g * 1.25, now(), "
                "'draft' FROM generate_series(%s, %s) g",
                (start + 1, min(start + 20_000, per)),
            )
    pid = supervisor.start_connector(config, bench.workdir / "connector.log")
    try:
        cdc_bench.wait_for(
            lambda: all(cdc_bench.end_offset(bench, t) >= per for t in topics),
            600,
            "every table's changes in Kafka",
            bench,
        )
    finally:
        supervisor.stop_connector(pid)
    stamps = [s for t in topics for s in cdc_bench.message_times(bench, t, [0, per - 1])]
    rate = (per * k - 1) / max(max(stamps) - min(stamps), 1e-6)
    return rate, cdc_bench.raw_decoding(bench, raw_slot, config.publication, per * k)


# -- the Iceberg sink: 10k / 100k / 1M-row tables -------------------------------------------------


def sink_curve() -> dict[str, float]:
    out: dict[str, float] = {}
    for label, rows in SINK_SIZES.items():
        log(f"sink: {sum(SINK_MIX):,} changes into a {rows:,}-row table")
        bench = sink_bench.Bench()
        try:
            bench.register()
            table = sink_bench.preload(bench, rows)
            rewrite_s = sink_bench.parquet_rewrite_s(bench, table)
            batch = sink_bench.changes(rows=rows, mix=SINK_MIX)
            sink_bench.produce(bench, batch)
            job = bench.job("upsert")
            report, apply_s, _ = sink_bench.timed_run(bench, job)
            sink_bench.verify_upsert(bench, job, report, batch, rows)
        finally:
            bench.close()
        out[f"sink_apply_{label}_s"] = round(apply_s, 3)
        out[f"parquet_rewrite_{label}_s"] = round(rewrite_s, 3)
        out[f"ratio_vs_parquet_rewrite_{label}"] = round(rewrite_s / apply_s, 3)
    return out


# -- Flink: TaskManager memory per running job ----------------------------------------------------


def flink_memory() -> dict[str, float]:
    conn = resolve()
    flink = FlinkJobs(conn)
    tm = _taskmanager_process()
    tag = uuid.uuid4().hex[:6]
    names: list[str] = []
    out: dict[str, float] = {}
    try:
        for target in FLINK_JOBS:
            while len(names) < target:
                names.append(_start_job(flink, conn, f"{tag}j{len(names)}"))
            _settle(JobManager(conn.flink_rest_url), names)
            rss = statistics.median(_rss_mb(tm) for _ in range(5))
            log(f"flink: TaskManager RSS {rss:.0f} MB with {target} job(s)")
            out[f"flink_tm_rss_{target}_jobs_mb"] = round(rss, 1)
    finally:
        for name in names:
            flink.cancel(name)
    idle, most = out[f"flink_tm_rss_{FLINK_JOBS[0]}_jobs_mb"], FLINK_JOBS[-1]
    per_job = (out[f"flink_tm_rss_{most}_jobs_mb"] - idle) / most
    out["flink_mb_per_job"] = round(per_job, 1)
    out["ratio_vs_idle_tm"] = round(per_job / idle, 3)
    return out


def _taskmanager_process() -> psutil.Process:
    """This stack's TaskManager JVM (the Flink component's processes and their children)."""
    record = state.load().get("flink")
    if record is None:
        raise RuntimeError("no embedded Flink in this stack: the memory curve needs its process")
    for pid in record.pids:
        try:
            root = psutil.Process(pid)
            for proc in (root, *root.children(recursive=True)):
                if any("TaskManagerRunner" in part for part in proc.cmdline()):
                    return proc
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError(f"no TaskManager among the Flink processes {record.pids}")


def _start_job(flink: FlinkJobs, conn: Connections, tag: str) -> str:
    """A projection job over its own topic of :data:`FLINK_EVENTS` Avro events; its name."""
    source = f"bench.scale{tag}.events"
    flink_bench.create_topics(conn, [source], flink_bench.PARTITIONS)  # preload spreads over them
    flink_bench.preload(conn, source, FLINK_EVENTS)
    events = InputTable(f"scale{tag}.events", source, flink_bench.COLUMNS, (), "append")
    job = ProcessorJob(
        product_id=f"scale{tag}.projected",
        name=f"mesh-scale{tag}-projected",
        sql=flink_bench.PROJECTION.format(src=events.product_id),
        sql_file="bench/scale_bench.py",
        inputs=(events,),
        output_topic=f"bench.scale{tag}.projected",
        key=(),
        declared_schema=None,
        declared_in="bench/scale_bench.py",
        settings=JobSettings(parallelism=1),
    )
    flink.deploy(job)
    return job.name


def _settle(jm: JobManager, names: Sequence[str], timeout_s: float = 120) -> None:
    """Wait until every job in ``names`` is RUNNING and has completed a checkpoint."""
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            job = jm.latest(name)
            if job is None or job.state != "RUNNING":
                continue
            counts = jm.get(f"/jobs/{job.job_id}/checkpoints").get("counts", {})
            if counts.get("completed", 0) > 0:
                pending.discard(name)
        time.sleep(1)
    if pending:
        raise RuntimeError(f"jobs not running with a checkpoint after {timeout_s}s: {pending}")
    time.sleep(5)  # let the first records pass through before sampling


def _rss_mb(proc: psutil.Process) -> float:
    time.sleep(1)
    return float(proc.memory_info().rss) / 2**20


# -- sensors: 10 / 100 / 500 topics ---------------------------------------------------------------


def sensor_curve(config: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    admin = TopicAdmin(config)
    settings = TopicSettings(SENSOR_PARTITIONS, 1, 86_400_000, "delete")
    tag = uuid.uuid4().hex[:6]
    topics: list[str] = []
    for n in SENSOR_TOPICS:
        while len(topics) < n:
            topic = f"bench.scale_sensor_{tag}_{len(topics)}"
            ensure_topic(admin, topic, settings, "bench")
            topics.append(topic)
        log(f"sensor: one tick of {n} topic sensors")
        sweep_s = _sweep(config, topics)
        raw_s = _raw_watermarks(config, topics)
        out[f"sensor_sweep_{n}_topics_ms"] = round(sweep_s * 1000, 1)
        out[f"sensor_tick_{n}_topics_ms"] = round(sweep_s * 1000 / n, 2)
        out[f"raw_watermarks_{n}_topics_ms"] = round(raw_s * 1000, 1)
        out[f"ratio_vs_raw_watermarks_{n}_topics"] = round(raw_s / sweep_s, 3)
    deleter = AdminClient(config)  # kept referenced until its futures resolve
    for future in deleter.delete_topics(topics).values():
        future.result()
    return out


def _sweep(config: dict[str, Any], topics: Sequence[str]) -> float:
    """Median seconds of one tick of every topic's sensor body (as sensors.topic_sensor does
    it: end offsets through the shared observer, the cursor decision, a SensorResult)."""
    kafka = KafkaResource(bootstrap_servers=config["bootstrap.servers"])
    cursors: dict[str, str | None] = dict.fromkeys(topics)

    def tick() -> None:
        for topic in topics:
            offsets = kafka.end_offsets(topic) or {}
            decision = decide(parse_cursor(cursors[topic]), offsets)
            cursors[topic] = dump_cursor(decision.cursor)
            dg.SensorResult(cursor=cursors[topic])

    return _median_s(tick)


def _raw_watermarks(config: dict[str, Any], topics: Sequence[str]) -> float:
    consumer = Consumer({**config, "group.id": "bench-scale-raw"})
    try:

        def tick() -> None:
            for topic in topics:
                for p in range(SENSOR_PARTITIONS):
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)

        return _median_s(tick)
    finally:
        consumer.close()


def _median_s(call: Callable[[], None]) -> float:
    call()  # warm: metadata and connections
    times = []
    for _ in range(SENSOR_TICKS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
