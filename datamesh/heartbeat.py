"""Synthetic heartbeat events: what they are, how every hop recognises them, what they measure.

A CDC product may declare ``heartbeat: {every: 10s}``. Its connector then writes, at that rate,
one *transactional* logical-decoding message into the source database's WAL
(``pg_logical_emit_message(true, 'mesh_heartbeat', '{"source": ..., "seq": n, "op": ...}')``),
cycling ``op`` through insert, update and delete of one synthetic row per source
(``seq % 3``). The message is decoded from the replication slot at its commit, in commit order
with the table's real changes, and published by the same producer to the product's own topic as
a **heartbeat record**: key and value both start with :data:`MARKER` (never a Confluent frame,
whose first byte is 0), the value carries a :class:`Beat` as JSON, including the source commit
time. From there each hop that reads the topic handles it:

- **Processors** (Flink jobs): the platform's formats (``mesh-avro``, ``mesh-debezium-avro``)
  drop heartbeat records, so user SQL never sees one. The generated job runs a second INSERT in
  the same statement set: a ``raw`` source on each input topic, keeping only records whose value
  starts with the marker, into a ``raw`` sink on the job's output topic. The heartbeat reaches
  the output only while that job runs, reads its inputs and writes its output; its Kafka
  timestamp there is when the job wrote it.
- **PostgreSQL sinks** (Flink JDBC jobs): the same branch writes one row per heartbeat into
  :data:`SINK_TABLE` of the sink's database (``arrived_at`` is the database's clock at insert);
  the sink table itself never gets a synthetic row.
- **Iceberg sinks**: a run sets heartbeat records aside before decoding and records the newest
  one it consumed in the committed snapshot's summary (:data:`SNAPSHOT_PROPERTY`); the snapshot's
  timestamp is its arrival. No synthetic row is written.

Latency per hop is the arrival at that hop minus the arrival at the hop before (matched by source
and ``seq``); end to end is the arrival minus the source commit time.

What it does not cover: a heartbeat does not go through user SQL (joins, filters, windows), so it
proves the job runs and moves records between its input and output topics, not that the user
operators keep up (a backlog inside them shows in the ``lag`` check, not here); there is no
heartbeat row in the source tables, so what it measures starts at the WAL.

**For audits and other readers**: a Kafka record is synthetic iff :func:`is_heartbeat` of its
value (or key) is true; synthetic events are never rows of a source table, of an Iceberg sink
table or of a PostgreSQL sink table (only of :data:`SINK_TABLE`, which audits skip).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamesh import names

if TYPE_CHECKING:
    from datamesh.specs.product import DataProduct

MARKER = b"\x7fmesh.heartbeat\x7f"  # first byte 0x7f: never a Confluent frame (magic byte 0)
MESSAGE_PREFIX = "mesh_heartbeat"  # the logical-decoding message prefix in the source's WAL
SINK_TABLE = "mesh_heartbeats"  # in a postgres_sink's schema: one row per heartbeat arrival
SNAPSHOT_PROPERTY = "mesh.sink.heartbeat"  # an Iceberg sink snapshot's newest heartbeat
OPS = ("c", "u", "d")  # insert, update, delete of the synthetic row, in turn


@dataclass(frozen=True)
class Beat:
    """One synthetic event: its CDC ``source`` product id, sequence number, ``op`` and the
    source commit time (epoch ms, 0 until the connector decoded it from the WAL)."""

    source: str
    seq: int
    op: str
    commit_ms: int = 0


def sources(product_id: str, by_id: Mapping[str, DataProduct]) -> tuple[str, ...]:
    """The topics of the heartbeat-declaring CDC products at or upstream of ``product_id``
    (the :attr:`Beat.source` values its hop should see), sorted; empty when none."""
    found: set[str] = set()
    todo, seen = [product_id], set()
    while todo:
        p = by_id[todo.pop()]
        if p.id in seen:
            continue
        seen.add(p.id)
        if p.kind == "cdc" and p.heartbeat is not None:
            found.add(names.topic(p))
        todo.extend(i for i in p.inputs if i in by_id)
    return tuple(sorted(found))


def is_heartbeat(data: bytes | None) -> bool:
    """True for the key or value of a heartbeat record (never for a real record)."""
    return data is not None and data.startswith(MARKER)


def op_for(seq: int) -> str:
    """The synthetic row's change for ``seq``: insert, update, delete, insert, ..."""
    return OPS[seq % len(OPS)]


def message(source: str, seq: int) -> str:
    """What the connector writes into the WAL for beat ``seq`` of ``source``."""
    return json.dumps({"source": source, "seq": seq, "op": op_for(seq)}, separators=(",", ":"))


def from_message(content: bytes, commit_ms: int) -> Beat:
    """The :class:`Beat` of a decoded WAL message, stamped with its transaction's commit time.

    Raises ValueError for content :func:`message` did not write."""
    body = _json(content)
    return Beat(str(body["source"]), int(body["seq"]), str(body["op"]), commit_ms)


def key(source: str) -> bytes:
    """The Kafka key of ``source``'s heartbeat records (one key: compaction keeps the newest)."""
    return MARKER + source.encode()


def encode(beat: Beat) -> bytes:
    """The Kafka value of a heartbeat record."""
    body = {"source": beat.source, "seq": beat.seq, "op": beat.op, "commit_ms": beat.commit_ms}
    return MARKER + json.dumps(body, separators=(",", ":")).encode()


def decode(value: bytes | None) -> Beat | None:
    """The :class:`Beat` of a heartbeat record's value; None for any other record (or a
    damaged heartbeat)."""
    if not is_heartbeat(value):
        return None
    assert value is not None
    try:
        body = _json(value[len(MARKER) :])
        return Beat(str(body["source"]), int(body["seq"]), str(body["op"]), int(body["commit_ms"]))
    except (ValueError, KeyError, TypeError):
        return None


def _json(content: bytes) -> dict[str, Any]:
    body = json.loads(content)
    if not isinstance(body, dict):
        raise ValueError(f"a heartbeat is a JSON object, got {content[:80]!r}")
    return body


@dataclass(frozen=True)
class Arrival:
    """A beat seen at one hop at ``arrived_ms`` (a Kafka timestamp, a snapshot's or row's time)."""

    beat: Beat
    arrived_ms: int


@dataclass(frozen=True)
class HopLatency:
    """Latency figures of one hop over the beats seen there: end to end (from the source
    commit) and the hop alone (from the arrival at the hop before), p50/p99 in ms, and the
    newest beat's source commit time."""

    samples: int
    e2e_p50_ms: int | None
    e2e_p99_ms: int | None
    hop_p50_ms: int | None
    hop_p99_ms: int | None
    newest_commit_ms: int | None

    def metadata(self) -> dict[str, Any]:
        """Dagster observation metadata (absent figures as -1: metadata values are not null)."""

        def v(x: int | None) -> int:
            return -1 if x is None else x

        return {
            "heartbeat_samples": self.samples,
            "heartbeat_latency_ms_p50": v(self.e2e_p50_ms),
            "heartbeat_latency_ms_p99": v(self.e2e_p99_ms),
            "heartbeat_hop_latency_ms_p50": v(self.hop_p50_ms),
            "heartbeat_hop_latency_ms_p99": v(self.hop_p99_ms),
            "heartbeat_newest_commit_ms": v(self.newest_commit_ms),
        }


def percentile(sample: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile ``q`` (0 < q <= 1) of ``sample``; None when it is empty."""
    if not sample:
        return None
    ordered = sorted(sample)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def hop_latency(here: Sequence[Arrival], before: Sequence[Arrival] | None) -> HopLatency:
    """Figures of a hop from the arrivals seen there and (None: the first hop, whose "before" is
    the source commit) at the hop it reads from; a beat not seen before counts end to end only."""
    e2e = [max(0, a.arrived_ms - a.beat.commit_ms) for a in here if a.beat.commit_ms]
    if before is None:
        hop = e2e
    else:
        earlier = {(a.beat.source, a.beat.seq): a.arrived_ms for a in before}
        hop = [
            max(0, a.arrived_ms - earlier[(a.beat.source, a.beat.seq)])
            for a in here
            if (a.beat.source, a.beat.seq) in earlier
        ]
    newest = max((a.beat.commit_ms for a in here if a.beat.commit_ms), default=None)
    return HopLatency(
        len(here),
        percentile(e2e, 0.5),
        percentile(e2e, 0.99),
        percentile(hop, 0.5),
        percentile(hop, 0.99),
        newest,
    )
