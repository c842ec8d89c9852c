"""Flink SQL generated for a processor job: session settings, table DDL, the INSERT.

Pure functions of a :class:`ProcessorJob`, its result columns and the :class:`Connections`; the
same inputs always give the same text, so the hash of the statements identifies a deployment.
Every topic is read and written in Confluent-framed Avro through the platform's ``mesh-avro`` /
``mesh-debezium-avro`` formats (jvm/flink-format).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datamesh import names
from datamesh.endpoints import REGISTRY_USER_INFO_VAR
from datamesh.flink.connections import Connections
from datamesh.flink.job import InputTable, ProcessorJob
from datamesh.flink.types import quote

SinkMode = Literal["append", "upsert"]
VIEW = "__mesh_query"
# Below the broker's default transaction.max.timeout.ms (15 min); Flink's default (1 h) is refused.
TRANSACTION_TIMEOUT_MS = 900_000
HASH_KEY = "mesh.sql-hash"


@dataclass(frozen=True)
class Statements:
    """What a deployment runs: session configuration, then DDL, then the INSERT."""

    config: dict[str, str]
    ddl: tuple[str, ...]
    insert: str

    @property
    def sql_hash(self) -> str:
        """Stable identity of the deployment (16 hex digits)."""
        text = json.dumps([sorted(self.config.items()), self.ddl, self.insert])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def session_config(job: ProcessorJob) -> dict[str, str]:
    """Session (job) configuration; set on the client because a remote session ignores the
    cluster's ``parallelism.default``."""
    s = job.settings
    exactly_once = s.delivery == "exactly-once"
    config = {
        "pipeline.name": job.name,
        "parallelism.default": str(s.parallelism),
        "execution.checkpointing.interval": f"{s.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE" if exactly_once else "AT_LEAST_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
        "table.exec.sink.not-null-enforcer": "ERROR",
    }
    if any(i.watermark for i in job.inputs):
        config["table.exec.source.idle-timeout"] = "10 s"
    config.update(dict(s.extra))
    return config


def with_hash(config: Mapping[str, str], sql_hash: str, job: ProcessorJob) -> dict[str, str]:
    """The configuration plus the deployment's identity, readable back from /jobs/{id}/config."""
    params = f"{HASH_KEY}:{sql_hash},mesh.product:{job.product_id}"
    return {**config, "pipeline.global-job-parameters": params}


def _options(options: Mapping[str, str]) -> str:
    return ",\n".join(f"  {literal(k)} = {literal(v)}" for k, v in options.items())


def _kafka(conn: Connections, topic: str) -> dict[str, str]:
    return {"topic": topic, **{f"properties.{k}": v for k, v in conn.kafka.items()}}


def _registry(prefix: str, fmt: str, conn: Connections) -> dict[str, str]:
    opts = {f"{prefix}.format": fmt, f"{prefix}.{fmt}.url": conn.registry_url}
    if conn.registry_user_info:  # read by the format inside Flink: never in the SQL itself
        opts[f"{prefix}.{fmt}.basic-auth.user-info"] = f"${{env:{REGISTRY_USER_INFO_VAR}}}"
    return opts


def source_ddl(
    table: InputTable, job: ProcessorJob, conn: Connections, startup: str = "group-offsets"
) -> str:
    """``CREATE TEMPORARY TABLE`` of one input, named by its product id.

    ``startup`` (plain ``kafka`` inputs): ``group-offsets`` resumes from the offsets the job
    committed (the beginning on a first start); ``earliest-offset`` rereads everything.
    """
    lines = [f"  {quote(n)} {t}" for n, t in table.columns]
    if table.watermark:
        col, delay = quote(table.watermark.column), table.watermark.delay_ms
        lines.append(f"  WATERMARK FOR {col} AS {col} - INTERVAL '{delay / 1000:g}' SECOND")
    if table.mode in ("changelog", "upsert"):
        lines.append(f"  PRIMARY KEY ({', '.join(map(quote, table.key))}) NOT ENFORCED")
    opts = _kafka(conn, table.topic)
    opts["properties.group.id"] = job.name
    if table.mode == "upsert":
        opts = {"connector": "upsert-kafka", **opts}
        opts.update(_registry("key", "mesh-avro", conn))
        opts["key.mesh-avro.dlq.topic"] = job.dlq_topic
        opts.update(_registry("value", "mesh-avro", conn))
        opts["value.mesh-avro.dlq.topic"] = job.dlq_topic
    else:
        opts = {"connector": "kafka", **opts}
        # First start reads from the beginning; a fresh restart resumes from the offsets the
        # job committed on its last checkpoint ("recorded offsets").
        opts["scan.startup.mode"] = startup
        opts["properties.auto.offset.reset"] = "earliest"
        fmt = "mesh-debezium-avro" if table.mode == "changelog" else "mesh-avro"
        opts.update(_registry("value", fmt, conn))
        opts[f"value.{fmt}.dlq.topic"] = job.dlq_topic
        if table.mode == "changelog":
            opts[f"value.{fmt}.changelog-mode"] = job.settings.changelog_mode
    return _create(table.product_id, lines, opts)


def sink_ddl(
    job: ProcessorJob,
    columns: Sequence[tuple[str, str]],
    mode: SinkMode,
    value_schema: dict[str, Any],
    key_schema: dict[str, Any] | None,
    conn: Connections,
) -> str:
    """``CREATE TEMPORARY TABLE`` of the output topic (``upsert-kafka`` for updating results)."""
    lines = [f"  {quote(n)} {t}" for n, t in columns]
    opts = _kafka(conn, job.output_topic)
    if mode == "upsert":
        lines.append(f"  PRIMARY KEY ({', '.join(map(quote, job.key))}) NOT ENFORCED")
        opts = {"connector": "upsert-kafka", **opts}
    else:
        opts = {"connector": "kafka", **opts}
        if job.key:
            opts["key.fields"] = ";".join(job.key)
    if key_schema is not None:
        opts.update(_registry("key", "mesh-avro", conn))
        opts["key.mesh-avro.subject"] = names.key_subject(job.output_topic)
        opts["key.mesh-avro.schema"] = json.dumps(key_schema, separators=(",", ":"))
    opts.update(_registry("value", "mesh-avro", conn))
    opts["value.mesh-avro.subject"] = names.value_subject(job.output_topic)
    opts["value.mesh-avro.schema"] = json.dumps(value_schema, separators=(",", ":"))
    opts["sink.delivery-guarantee"] = job.settings.delivery
    if job.settings.delivery == "exactly-once":
        opts["sink.transactional-id-prefix"] = job.name
        opts["properties.transaction.timeout.ms"] = str(TRANSACTION_TIMEOUT_MS)
    return _create(job.sink_table, lines, opts)


def jdbc_sink_ddl(job: ProcessorJob) -> str:
    """``CREATE TEMPORARY TABLE`` of a ``postgres_sink``'s target: Flink's ``jdbc`` connector
    keyed by ``PRIMARY KEY (<key>) NOT ENFORCED``, so it upserts and deletes by key.

    No ``password`` option, ever: see :mod:`datamesh.flink.sink_job` for how the driver gets one.
    """
    target = job.jdbc
    if target is None:
        raise ValueError(f"{job.name} is not a JDBC sink job")
    lines = [f"  {quote(n)} {t}{' NOT NULL' if n in job.key else ''}" for n, t, _ in target.columns]
    lines.append(f"  PRIMARY KEY ({', '.join(map(quote, job.key))}) NOT ENFORCED")
    opts = {"connector": "jdbc", "url": target.url, "table-name": target.qualified}
    # Flushed at least every checkpoint too; rows of one key are reduced to the latest change.
    # A serving table wants latency: at 1,000 changes/s a 1 s interval measured p99 ~0.5-1 s
    # commit->row, 200 ms measured p99 ~0.33 s (bench/postgres_sink_bench.py), for smaller
    # transactions (~70 rows instead of ~250).
    opts["sink.buffer-flush.max-rows"] = "500"
    opts["sink.buffer-flush.interval"] = "200ms"
    opts["sink.max-retries"] = "3"
    return _create(job.sink_table, lines, opts)


def _create(name: str, lines: Sequence[str], opts: Mapping[str, str]) -> str:
    body = ",\n".join(lines)
    return f"CREATE TEMPORARY TABLE {quote(name)} (\n{body}\n) WITH (\n{_options(opts)}\n)"


def view_statement(job: ProcessorJob) -> str:
    """The query as a view; the query starts on line 2, column 1 (errors are shifted by one)."""
    return f"CREATE TEMPORARY VIEW {quote(VIEW)} AS\n{job.sql}"


def insert_statement(job: ProcessorJob) -> str:
    """The job's DML; the query starts on line 2, column 1."""
    return f"INSERT INTO {quote(job.sink_table)}\n{job.sql}"


def warmup_statements(conn: Connections) -> tuple[str, ...]:
    """Statements that exercise what a first deployment's planning loads — a CDC changelog
    source in ``mesh-debezium-avro``, a watermark, an aggregate, ``EXPLAIN`` — on a topic
    nothing reads and a ``blackhole`` sink: planned only, nothing runs or connects
    (:mod:`datamesh.flink.warmup`)."""
    opts = {"connector": "kafka", **_kafka(conn, "mesh.warmup")}
    opts["scan.startup.mode"] = "latest-offset"
    opts.update(_registry("value", "mesh-debezium-avro", conn))
    opts["value.mesh-debezium-avro.dlq.topic"] = "mesh.warmup.dlq"
    opts["value.mesh-debezium-avro.changelog-mode"] = "upsert"
    source = _create(
        "mesh_warmup_in",
        [
            "  `id` BIGINT NOT NULL",
            "  `region` STRING",
            "  `at` TIMESTAMP_LTZ(3)",
            "  WATERMARK FOR `at` AS `at` - INTERVAL '5' SECOND",
            "  PRIMARY KEY (`id`) NOT ENFORCED",
        ],
        opts,
    )
    sink = _create(
        "mesh_warmup_out",
        ["  `region` STRING", "  `n` BIGINT", "  PRIMARY KEY (`region`) NOT ENFORCED"],
        {"connector": "blackhole"},
    )
    query = "SELECT `region`, COUNT(*) AS `n` FROM `mesh_warmup_in` GROUP BY `region`"
    return source, sink, f"EXPLAIN INSERT INTO `mesh_warmup_out` {query}"
