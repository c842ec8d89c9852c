"""Read a topic between two sets of offsets: from what the table committed to the end offsets
seen when the run started (never past them, so a run's range is fixed when it begins).

``read_committed``: a transactional (exactly-once) producer's aborted records are never read; an
open transaction ends the read at its first offset (the partition's EOF), and the run records the
position it reached, so the next run continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from datamesh.errors import TransientError
from datamesh.heartbeat import is_heartbeat

Offsets = dict[int, int]
STALL_S = 30.0


class Raw(NamedTuple):
    """One Kafka record as read: where it was, its timestamp, raw key and value.

    A tuple, not a dataclass: a batch holds ~10^5 of them and building one is ~3x cheaper.
    """

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


@dataclass
class Fetched:
    """Raw records of a run, in offset order per partition, and where each partition stops."""

    records: list[Raw] = field(default_factory=list)
    next_offsets: Offsets = field(default_factory=dict)
    heartbeats: list[Raw] = field(default_factory=list)  # synthetic: set aside, never rows


def watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) watermark per partition; empty when the topic does not exist."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        for p in sorted(meta.partitions)
    }


def open_consumer(config: dict[str, Any], group: str) -> Consumer:
    """A consumer that never commits to Kafka (the table holds the offsets).

    It assigns partitions itself, so concurrent runs sharing ``group`` do not rebalance each
    other; the group is named anyway because an authorizer checks it (see ``names.sink_group``).
    """
    return Consumer(
        {
            **config,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            # the run knows where it stops: no broker long-poll at the end of the range
            "fetch.wait.max.ms": 50,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
        }
    )


def read_range(
    consumer: Consumer,
    topic: str,
    start: Offsets,
    end: Offsets,
    progress: Callable[[int], None] = lambda n: None,
    on_records: Callable[[list[Raw]], None] = lambda records: None,
) -> Fetched:
    """Messages of ``topic`` with ``start[p] <= offset < end[p]``; ``next_offsets`` per partition.
    Synthetic heartbeat records (:mod:`datamesh.heartbeat`) go to ``heartbeats``, not
    ``records`` (nor ``on_records``).

    A partition absent from ``start`` starts at its beginning. Raises TransientError when no
    message arrives for ``STALL_S`` seconds while some are still expected.
    """
    out = Fetched(next_offsets={p: start.get(p, 0) for p in end})
    pending = {p for p, e in end.items() if e > start.get(p, 0)}
    if not pending:
        return out
    consumer.assign([TopicPartition(topic, p, start.get(p, OFFSET_BEGINNING)) for p in pending])
    last_progress = time.monotonic()
    handed = 0
    while pending:
        batch = consumer.consume(num_messages=20_000, timeout=0.5)
        if batch:
            last_progress = time.monotonic()
        for msg in batch:
            p, offset = msg.partition(), msg.offset()
            if p is None or offset is None or p not in pending:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise TransientError(f'reading "{topic}" [{p}]: {err}', fix="retry the run")
                out.next_offsets[p] = max(out.next_offsets[p], min(offset, end[p]))
                pending.discard(p)
                continue
            if offset >= end[p]:
                pending.discard(p)
                continue
            kind, stamp = msg.timestamp()
            raw = Raw(p, offset, stamp if kind else None, msg.key(), msg.value())
            (out.heartbeats if is_heartbeat(raw.value) else out.records).append(raw)
            out.next_offsets[p] = offset + 1
            if out.next_offsets[p] >= end[p]:
                pending.discard(p)
        if len(out.records) > handed:
            on_records(out.records[handed:])  # e.g. decoded while the next fetch arrives
            handed = len(out.records)
            progress(handed)
        if pending and time.monotonic() - last_progress > STALL_S:
            raise TransientError(
                f'reading "{topic}": partitions {sorted(pending)} stalled for {STALL_S:.0f}s '
                f"before reaching { ({p: end[p] for p in pending}) }",
                fix="check the broker; the next run starts from the table's offsets",
            )
    consumer.unassign()
    return out
