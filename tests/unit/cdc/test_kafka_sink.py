"""KafkaSink over a fake producer: which message carries the epoch's delivery report, how a
full queue and a refused message are handled, what drain drops (pure: no broker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from datamesh.cdc import delivery
from datamesh.cdc.delivery import KafkaSink
from datamesh.cdc.errors import DeliveryFailed
from datamesh.cdc.partitioner import partition_for

Report = Callable[[KafkaError | None, Any], None]


class FakeProducer:
    """Records produce() calls; poll() serves their delivery reports (OK unless told)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[tuple[str, bytes | None, bytes | None, int, bool]] = []
        self.reports: list[Report] = []
        self.full = 0  # produce() raises BufferError this many times
        self.refuse: KafkaException | None = None  # produce() raises this
        self.poll_error: KafkaException | None = None
        self.polls = 0
        self.purged = False

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        callback: Report | None = None,
    ) -> None:
        if self.refuse is not None:
            raise self.refuse
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((topic, key, value, partition, callback is not None))
        if callback is not None:
            self.reports.append(callback)

    def poll(self, timeout: float = 0.0) -> int:
        self.polls += 1
        if self.poll_error is not None:
            raise self.poll_error
        reports, self.reports = self.reports, []
        for report in reports:
            report(None, None)
        return len(reports)

    def __len__(self) -> int:
        return len(self.reports)

    def purge(self) -> None:
        self.purged = True
        self.reports.clear()

    def flush(self, timeout: float = 0.0) -> int:
        return 0


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeProducer]]:
    made: list[FakeProducer] = []

    def make(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config))
        return made[-1]

    monkeypatch.setattr(delivery, "Producer", make)
    yield made


def _sink(producers: list[FakeProducer], partitions: int = 1) -> tuple[KafkaSink, FakeProducer]:
    sink = KafkaSink({"bootstrap.servers": "unused:9092"})
    sink.add_topic("t", partitions)
    return sink, producers[-1]


def test_the_producer_is_idempotent_gapless_and_never_expires_messages(
    producers: list[FakeProducer],
) -> None:
    _sink(producers)
    config = producers[-1].config
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["enable.gapless.guarantee"] is True
    assert config["message.timeout.ms"] == 0  # expiry is the one gap the guarantee allows
    assert config["bootstrap.servers"] == "unused:9092" and callable(config["error_cb"])


def test_only_each_partitions_last_message_of_an_epoch_carries_the_report(
    producers: list[FakeProducer],
) -> None:
    sink, fake = _sink(producers, partitions=2)
    keys = [b"a", b"b", b"c", b"d"]
    parts = {k: partition_for(k, 2) for k in keys}
    assert set(parts.values()) == {0, 1}, parts  # the keys cover both partitions
    for i, k in enumerate(keys):
        sink.send("t", k, b"%d" % i)
    # nothing carries a report yet; each partition's newest message is still held back
    assert all(not carries for *_, carries in fake.produced)
    assert len(fake.produced) == 2 and sink.in_flight() == 2
    sink.seal(100)
    assert len(fake.produced) == 4
    last_of = {p: max(i for i, k in enumerate(keys) if parts[k] == p) for p in (0, 1)}
    for topic, key, value, partition, carries in fake.produced:
        assert key is not None
        assert topic == "t" and partition == parts[key]
        i = keys.index(key)
        assert value == b"%d" % i
        assert carries == (i == last_of[partition])
    in_zero = [k for _, k, _, partition, _ in fake.produced if partition == 0]
    assert in_zero == [k for k in keys if parts[k] == 0]  # produce order kept per partition
    assert sink.acks.confirmable() is None  # sealed, reports not served yet
    sink.poll()
    assert sink.acks.confirmable() == 100 and sink.acks.acked == 4


def test_a_delivery_error_of_a_marker_fails_the_epoch(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"v1")
    sink.send("t", b"k", b"v2")
    sink.seal(10)
    sink.send("t", b"k", b"v3")
    sink.seal(20)
    first, second = fake.reports
    second(None, None)
    first(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)
    with pytest.raises(DeliveryFailed, match="Kafka did not acknowledge"):
        sink.acks.confirmable()


def test_a_full_queue_is_waited_out_in_order(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"1")
    sink.send("t", b"k", b"2")  # produces "1"
    fake.full = 3
    sink.send("t", b"k", b"3")  # produces "2": refused inline, then retried after each poll
    sink.seal(7)
    assert [v for _, _, v, _, _ in fake.produced] == [b"1", b"2", b"3"]
    assert fake.polls == 2  # refusals 2 and 3 each served deliveries before the next try


def test_a_queue_full_for_too_long_is_a_delivery_failure(
    producers: list[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "QUEUE_FULL_LIMIT_S", 0.0)
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"1")
    fake.full = 10**6
    with pytest.raises(DeliveryFailed, match="queue stayed full"):
        sink.seal(7)


def test_a_refused_produce_is_a_delivery_failure(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"1")
    fake.refuse = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(DeliveryFailed, match="Kafka refused an event"):
        sink.seal(7)
    with pytest.raises(DeliveryFailed, match="Kafka refused an event"):
        sink.send("t", b"k", b"2")  # produces the held "1" inline, then the careful path


def test_a_fatal_producer_error_stops_every_confirmation(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"1")
    sink.seal(7)
    sink.poll()
    fatal = KafkaError(KafkaError._FATAL, "gapless guarantee violated", fatal=True)
    fake.config["error_cb"](fatal)
    with pytest.raises(DeliveryFailed, match="gapless guarantee violated"):
        sink.acks.confirmable()  # even the epoch already acknowledged is not confirmed


def test_a_fatal_error_from_poll_is_recorded_and_raised(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    fake.poll_error = KafkaException(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    with pytest.raises(DeliveryFailed, match="fenced"):
        sink.poll(0.1)
    assert sink.acks.failure is not None
    with pytest.raises(DeliveryFailed):
        sink.acks.confirmable()


def test_drain_drops_the_unsealed_epoch(producers: list[FakeProducer]) -> None:
    sink, fake = _sink(producers)
    sink.send("t", b"k", b"1")
    sink.seal(10)
    sink.send("t", b"k", b"2")
    sink.send("t", b"k", b"3")  # "2" produced, "3" held; the epoch is never sealed
    assert sink.drain(1.0) is True
    assert [v for _, _, v, _, _ in fake.produced] == [b"1", b"2"]  # "3" is replayed later
    assert sink.in_flight() == 0
    assert sink.acks.confirmable() == 10
    sink.send("t", b"k", b"4")
    sink.seal(20)
    sink.poll()
    assert sink.acks.confirmable() == 20
    assert sink.acks.acked == 2  # epoch 10's one message and epoch 20's one, not 2 and 3
