"""The heartbeat branch of a generated job: synthetic events around the user's SQL, in its job.

A job whose inputs carry heartbeats (an upstream CDC product declares ``heartbeat:``, see
:mod:`datamesh.heartbeat`) runs its INSERT and this branch as one statement set, so one Flink job
does both. The user's source tables drop heartbeat records in the platform's formats; the branch
reads each input topic again as ``raw`` key/value bytes, keeps the records whose key starts with
the marker, and writes them

- for a processor: unchanged to its output topic (``raw``; the Kafka timestamp there is when the
  job wrote it), where the next job or sink finds them like any record of the topic;
- for a ``postgres_sink``: as one row per beat into ``<schema>.mesh_heartbeats`` of the sink's
  database (``arrived_at`` set by PostgreSQL at insert), never into the sink table.

The branch's sources start at the latest offsets and commit none (the job's group offsets stay
those of the user's sources, which the lag check and ``from-offsets`` read); a job restored from
a savepoint or checkpoint resumes them from their own state. Heartbeats are liveness samples:
any written while a job did not run are not replayed by a fresh start.
"""

from __future__ import annotations

from datamesh import heartbeat
from datamesh.flink import ddl
from datamesh.flink.connections import Connections
from datamesh.flink.job import ProcessorJob
from datamesh.flink.types import quote

SOURCE = "__mesh_heartbeat_in_{}"
SINK = "__mesh_heartbeat_out"
# the marker as a Flink SQL string: the key's UTF-8 text starts with it
_MARKER_SQL = "CHR(127) || 'mesh.heartbeat' || CHR(127)"
_BODY_FROM = len(heartbeat.MARKER) + 1  # SUBSTRING is 1-based


def source_ddl(job: ProcessorJob, conn: Connections) -> tuple[str, ...]:
    """One ``raw`` source table per input topic (none when no input carries heartbeats)."""
    if not job.heartbeats:
        return ()
    out = []
    for i, table in enumerate(job.inputs):
        opts = {"connector": "kafka", **ddl._kafka(conn, table.topic)}
        opts["properties.group.id"] = job.name
        opts["properties.commit.offsets.on.checkpoint"] = "false"
        opts["scan.startup.mode"] = "latest-offset"
        opts["key.format"] = "raw"
        opts["key.fields"] = "k"
        opts["value.format"] = "raw"
        opts["value.fields-include"] = "EXCEPT_KEY"
        out.append(ddl._create(SOURCE.format(i), ["  `k` BYTES", "  `v` BYTES"], opts))
    return tuple(out)


def sink_ddl(job: ProcessorJob, conn: Connections) -> str | None:
    """Where the branch writes: the output topic (``raw``), or a sink's heartbeat table."""
    if not job.heartbeats:
        return None
    if job.jdbc is not None:
        lines = [
            "  `sink` STRING NOT NULL",
            "  `source` STRING NOT NULL",
            "  `seq` BIGINT NOT NULL",
            "  `op` STRING",
            "  `commit_ms` BIGINT",
            "  PRIMARY KEY (`sink`, `source`, `seq`) NOT ENFORCED",
        ]
        target = f"{job.jdbc.schema}.{heartbeat.SINK_TABLE}"
        opts = {"connector": "jdbc", "url": job.jdbc.url, "table-name": target}
        opts["sink.buffer-flush.max-rows"] = "100"
        opts["sink.buffer-flush.interval"] = "200ms"
        return ddl._create(SINK, lines, opts)
    opts = {"connector": "kafka", **ddl._kafka(conn, job.output_topic)}
    opts["key.format"] = "raw"
    opts["key.fields"] = "k"
    opts["value.format"] = "raw"
    opts["value.fields-include"] = "EXCEPT_KEY"
    opts["sink.delivery-guarantee"] = job.settings.delivery
    if job.settings.delivery == "exactly-once":
        opts["sink.transactional-id-prefix"] = f"{job.name}-heartbeat"
        opts["properties.transaction.timeout.ms"] = str(ddl.TRANSACTION_TIMEOUT_MS)
    return ddl._create(SINK, ["  `k` BYTES", "  `v` BYTES"], opts)


def insert(job: ProcessorJob) -> str | None:
    """The branch's INSERT (None when no input carries heartbeats)."""
    if not job.heartbeats:
        return None
    reads = [
        f"SELECT `k`, `v` FROM {quote(SOURCE.format(i))}\n"
        f"WHERE `v` IS NOT NULL AND SUBSTRING(CAST(`k` AS STRING) FROM 1 FOR "
        f"{len(heartbeat.MARKER)}) = {_MARKER_SQL}"
        for i in range(len(job.inputs))
    ]
    union = "\nUNION ALL\n".join(reads)
    if job.jdbc is None:
        return f"INSERT INTO {quote(SINK)}\n{union}"
    body = f"SUBSTRING(CAST(`v` AS STRING) FROM {_BODY_FROM})"
    return (
        f"INSERT INTO {quote(SINK)}\n"
        f"SELECT {ddl.literal(job.product_id)}, JSON_VALUE(b, '$.source'), "
        "CAST(JSON_VALUE(b, '$.seq') AS BIGINT), JSON_VALUE(b, '$.op'), "
        "CAST(JSON_VALUE(b, '$.commit_ms') AS BIGINT)\n"
        f"FROM (SELECT {body} AS b FROM (\n{union}\n))"
    )


def statement_set(user_insert: str, branch: str | None) -> str:
    """The job's DML: the user's INSERT alone, or both INSERTs as one statement set (one job)."""
    if branch is None:
        return user_insert
    return f"EXECUTE STATEMENT SET\nBEGIN\n{user_insert};\n{branch};\nEND"
