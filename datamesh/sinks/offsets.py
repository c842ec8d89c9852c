"""Kafka offsets committed in an Iceberg table's snapshots: the table is the record of progress.

Each sink snapshot's summary carries ``mesh.sink.offsets`` = ``{"topic": ..., "offsets":
{"<partition>": <next offset>}}``. The newest snapshot (walking back through ancestors, past
snapshots other writers may add, e.g. compaction) that carries it says where the next batch
starts; no snapshot means the beginning of the topic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from datamesh import heartbeat
from datamesh.sinks.reader import Raw

PROPERTY = "mesh.sink.offsets"
HEARTBEATS_KEPT = 20  # newest heartbeats recorded per snapshot
EVENT_PROPERTY = "mesh.sink.newest-event-ms"
Offsets = dict[int, int]


def summary_property(topic: str, offsets: Offsets) -> dict[str, str]:
    """The snapshot property recording ``offsets`` (next offset per partition) of ``topic``."""
    body = {"topic": topic, "offsets": {str(p): o for p, o in sorted(offsets.items())}}
    return {PROPERTY: json.dumps(body, separators=(",", ":"))}


def committed(table: Table, topic: str) -> Offsets:
    """The next offset per partition recorded by the newest sink snapshot for ``topic``."""
    metadata = table.metadata
    for snapshot in ancestors_of(table.current_snapshot(), metadata):
        text = snapshot.summary[PROPERTY] if snapshot.summary is not None else None
        if not text:
            continue
        body = json.loads(text)
        if body.get("topic") != topic:
            return {}  # the sink was pointed at another topic: start that one from its beginning
        return {int(p): int(o) for p, o in body["offsets"].items()}
    return {}


def newest_event_ms(table: Table) -> int | None:
    """Source commit time (epoch ms) of the newest change the table holds, as recorded."""
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        text = snapshot.summary[EVENT_PROPERTY] if snapshot.summary is not None else None
        if text:
            return int(text)
    return None


def event_property(previous: int | None, batch: int | None) -> dict[str, str]:
    """The snapshot property recording the newest event time written so far."""
    newest = max((t for t in (previous, batch) if t is not None), default=None)
    return {} if newest is None else {EVENT_PROPERTY: str(newest)}


def heartbeat_property(raws: Sequence[Raw]) -> dict[str, str]:
    """The snapshot property recording the (newest :data:`HEARTBEATS_KEPT`) heartbeats a batch
    consumed, as ``[[source, seq, commit_ms], ...]``; the snapshot's timestamp is their arrival.
    Empty when there were none."""
    beats = [b for b in (heartbeat.decode(r.value) for r in raws) if b is not None]
    if not beats:
        return {}
    body = [[b.source, b.seq, b.commit_ms] for b in beats[-HEARTBEATS_KEPT:]]
    return {heartbeat.SNAPSHOT_PROPERTY: json.dumps(body, separators=(",", ":"))}


def heartbeat_arrivals(table: Table, snapshots: int = 50) -> list[heartbeat.Arrival]:
    """Heartbeats recorded by the newest ``snapshots`` snapshots, arriving at their timestamps."""
    out: list[heartbeat.Arrival] = []
    for i, snapshot in enumerate(ancestors_of(table.current_snapshot(), table.metadata)):
        if i >= snapshots:
            break
        text = snapshot.summary[heartbeat.SNAPSHOT_PROPERTY] if snapshot.summary else None
        for source, seq, commit_ms in json.loads(text) if text else []:
            beat = heartbeat.Beat(str(source), int(seq), heartbeat.op_for(int(seq)), int(commit_ms))
            out.append(heartbeat.Arrival(beat, snapshot.timestamp_ms))
    return out
