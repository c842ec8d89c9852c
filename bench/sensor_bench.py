"""Sensor figures: one topic-sensor tick vs reading the same watermarks with a raw consumer."""

from __future__ import annotations

import time
import uuid

import dagster as dg
from confluent_kafka import Consumer, Producer, TopicPartition

from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic
from resources.kafka import KafkaResource
from sensors.decide import decide, dump_cursor, parse_cursor

PARTITIONS = 12


def run(bootstrap: str, ticks: int = 20) -> dict[str, float]:
    """Milliseconds per tick (offsets + decision + SensorResult) against raw watermark reads."""
    topic = f"bench.sensor_{uuid.uuid4().hex[:8]}"
    settings = TopicSettings(PARTITIONS, 1, 86_400_000, "delete")
    ensure_topic(TopicAdmin(client_config(bootstrap)), topic, settings, "bench")
    producer = Producer(client_config(bootstrap))
    for i in range(10_000):
        producer.produce(topic, key=str(i), value=b"x")
    producer.flush(30)
    kafka = KafkaResource(bootstrap_servers=bootstrap)
    cursor: str | None = None
    start = time.perf_counter()
    for _ in range(ticks):
        offsets = kafka.end_offsets(topic) or {}
        decision = decide(parse_cursor(cursor), offsets)
        cursor = dump_cursor(decision.cursor)
        dg.SensorResult(cursor=cursor)
    tick_s = (time.perf_counter() - start) / ticks
    consumer = Consumer({**client_config(bootstrap), "group.id": "bench-raw"})
    start = time.perf_counter()
    for _ in range(ticks):
        for p in range(PARTITIONS):
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    raw_s = (time.perf_counter() - start) / ticks
    consumer.close()
    return {
        "tick_ms": round(tick_s * 1000, 1),
        "raw_watermarks_ms": round(raw_s * 1000, 1),
        "ratio_vs_raw_watermarks": round(raw_s / tick_s, 3),
    }
