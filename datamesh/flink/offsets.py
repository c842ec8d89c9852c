"""The offsets a job's consumer group committed to Kafka: what ``from-offsets`` resumes from.

Flink's Kafka source commits the offsets of each completed checkpoint under the job's group
(``properties.group.id`` = the job name); a job started without state with
``scan.startup.mode = group-offsets`` resumes there, and reads a partition without a committed
offset from its beginning. This module tells beforehand which inputs that would be.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from datamesh.flink.connections import Connections
from datamesh.kafka_admin import kafka_error
from datamesh.kafka_config import client_config

TIMEOUT_S = 15.0


def uncommitted(conn: Connections, group: str, topics: Sequence[str]) -> list[str]:
    """The topics among ``topics`` with a partition ``group`` committed no offset on."""
    if not topics:
        return []
    config = {**client_config(conn.bootstrap), "group.id": group, "enable.auto.commit": False}
    consumer = Consumer(config)
    try:
        missing = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
            parts = [TopicPartition(topic, p) for p in (meta.partitions if meta else {})]
            committed = consumer.committed(parts, timeout=TIMEOUT_S) if parts else []
            if not committed or any(tp.offset < 0 for tp in committed):
                missing.append(topic)
        return missing
    except KafkaException as exc:
        raise kafka_error(f'read the offsets of consumer group "{group}"', exc) from exc
    finally:
        consumer.close()
