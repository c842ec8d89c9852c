"""The Kafka sink against the real broker: ordered confirmation, full queues, partitioning,
failures; and the partitioner against Kafka's own test vectors (pure)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from functools import partial

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__

from datamesh.cdc.delivery import KafkaSink
from datamesh.cdc.errors import DeliveryFailed
from datamesh.cdc.partitioner import murmur2, partition_for
from datamesh.kafka_config import client_config

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed 32-bit results)
KAFKA_VECTORS = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("text", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka(text: str, expected: int) -> None:
    assert murmur2(text.encode()) == expected & 0xFFFFFFFF


def test_partition_for_null_keys_and_single_partitions() -> None:
    assert partition_for(None, 6) == 0
    assert partition_for(b"anything", 1) == 0
    assert partition_for(b"21", 12) == (-973932308 & 0x7FFFFFFF) % 12


def _topic(bootstrap: str, partitions: int, **config: str) -> str:
    name = f"cdcsink_{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result()
    return name


def _confirm_until(sink: KafkaSink, lsn: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    latest = 0
    while time.monotonic() < deadline:
        sink.poll(0.1)
        latest = sink.acks.confirmable() or latest
        if latest >= lsn:
            return latest
    raise AssertionError(f"confirmed only up to {latest}, expected {lsn}")


@pytest.mark.integration
def test_epochs_confirm_in_order_through_a_full_queue_and_partitions(
    endpoints: dict[str, str],
) -> None:
    bootstrap = endpoints["kafka"]
    topic = _topic(bootstrap, 3)
    # a tiny local queue: produce() refuses messages while it is full; they must be retried
    sink = KafkaSink({**client_config(bootstrap), "queue.buffering.max.messages": 100})
    sink.add_topic(topic, 3)
    done: list[int] = []
    for epoch in range(1, 21):
        for i in range(250):
            sink.send(topic, f"k{i % 40}".encode(), f"{epoch}:{i}".encode())
        sink.seal(epoch * 100, then=partial(done.append, epoch))
    assert _confirm_until(sink, 2000) == 2000
    assert done == list(range(1, 21)) and sink.acks.acked == 5000
    sink.close()

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    per_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    deadline = time.monotonic() + 30
    seen = 0
    while seen < 5000 and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1):
            seen += 1
            key, value = msg.key(), msg.value()
            assert key is not None and value is not None
            assert msg.partition() == partition_for(key, 3)
            sent_epoch, sent_index = value.decode().split(":")
            per_key[key].append((int(sent_epoch), int(sent_index)))
    consumer.close()
    assert seen == 5000
    assert all(values == sorted(values) for values in per_key.values())  # per-key order


@pytest.mark.integration
def test_a_refused_message_fails_the_epoch(endpoints: dict[str, str]) -> None:
    bootstrap = endpoints["kafka"]
    topic = _topic(bootstrap, 1, **{"cleanup.policy": "compact"})
    sink = KafkaSink(client_config(bootstrap))
    sink.add_topic(topic, 1)
    sink.send(topic, b"k", b"fine")
    sink.send(topic, None, b"a null key: refused by a compacted topic")
    sink.seal(10)
    with pytest.raises(DeliveryFailed, match="Kafka"):
        _confirm_until(sink, 10, timeout_s=30)
    sink.close()
