"""The offsets a job's consumer group committed to Kafka: what ``from-offsets`` resumes from.

Flink's Kafka source commits the offsets of each completed checkpoint under the job's group
(``properties.group.id`` = the job name); a job started without state with
``scan.startup.mode = group-offsets`` resumes there, and reads a partition without a committed
offset from its beginning. This module tells beforehand which inputs that would be, and lets a
running job's commit land before the job is stopped.

The commit lags the checkpoint: the source (connector 5.0.0-2.2) queues it behind the fetcher's
running ``KafkaConsumer.poll``, which waits ``KafkaPartitionSplitReader.POLL_TIMEOUT`` (10 s)
when the input is idle. A job stopped in that window never commits: the stop-with-savepoint's
own commit is queued too, and dropped when the fetcher shuts down right after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaException, TopicPartition

from datamesh.flink.connections import Connections
from datamesh.kafka_admin import kafka_error
from datamesh.kafka_config import client_config

TIMEOUT_S = 15.0
# KafkaPartitionSplitReader.POLL_TIMEOUT of flink-sql-connector-kafka 5.0.0-2.2 (jvm/flink/pom.xml).
SOURCE_POLL_TIMEOUT_S = 10.0


def uncommitted(conn: Connections, group: str, topics: Sequence[str]) -> list[str]:
    """The topics among ``topics`` with a partition holding records that ``group`` committed no
    offset on (an empty partition is read from its beginning without rereading anything)."""
    with _consumer(conn, group) as consumer:
        ends = _ends(consumer, topics)
        committed = _committed(consumer, list(ends))
        return _topics(tp for tp in ends if committed.get(tp, -1) < 0)


def wait_committed(
    conn: Connections, group: str, topics: Sequence[str], timeout_s: float
) -> list[str]:
    """Wait until ``group`` committed the offsets ``topics`` end at now on every partition that
    holds records; the topics still behind after ``timeout_s`` (none: all caught up). A topic
    written in transactions ends with a commit marker the source does not commit past (it commits
    the offset after its last record), so on such a topic the wait runs to ``timeout_s``."""
    with _consumer(conn, group) as consumer:
        ends = _ends(consumer, topics)
        deadline = time.monotonic() + timeout_s
        while True:
            committed = _committed(consumer, list(ends))
            behind = [tp for tp, end in ends.items() if committed.get(tp, -1) < end]
            if not behind or time.monotonic() >= deadline:
                return _topics(behind)
            time.sleep(0.5)


@contextmanager
def _consumer(conn: Connections, group: str) -> Iterator[Consumer]:
    config = {**client_config(conn.bootstrap), "group.id": group, "enable.auto.commit": False}
    consumer = Consumer(config)
    try:
        yield consumer
    except KafkaException as exc:
        raise kafka_error(f'read the offsets of consumer group "{group}"', exc) from exc
    finally:
        consumer.close()


def _ends(consumer: Consumer, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics`` that holds records."""
    ends = {}
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        for p in meta.partitions if meta else {}:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            if high > low:
                ends[(topic, p)] = int(high)
    return ends


def _committed(consumer: Consumer, parts: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    if not parts:
        return {}
    found = consumer.committed([TopicPartition(t, p) for t, p in parts], timeout=TIMEOUT_S)
    return {(tp.topic, tp.partition): int(tp.offset) for tp in found}


def _topics(parts: Iterable[tuple[str, int]]) -> list[str]:
    return sorted({topic for topic, _ in parts})
