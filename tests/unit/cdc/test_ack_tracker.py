"""AckTracker: the slot may confirm an LSN only once every earlier event is in Kafka (pure)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from datamesh.cdc.delivery import AckTracker, _Epoch
from datamesh.cdc.errors import DeliveryFailed


def _seal(tracker: AckTracker, lsn: int, markers: int, log: list[int] | None = None) -> _Epoch:
    """Seal the open epoch at ``lsn`` with ``markers`` partition markers awaiting a report."""
    epoch = tracker.open
    epoch.pending = markers
    epoch.messages = markers
    then = None if log is None else (lambda: log.append(lsn))
    tracker.seal(lsn, then)
    return epoch


def _ack(epoch: _Epoch, err: KafkaError | None = None) -> None:
    epoch.delivered(err, None)  # type: ignore[arg-type]  # the message is not looked at


def test_out_of_order_acks_confirm_only_the_acknowledged_prefix() -> None:
    tracker = AckTracker()
    ran: list[int] = []
    first, second, third = (_seal(tracker, lsn, 2, ran) for lsn in (100, 200, 300))
    for marker in (second, second, third, third):  # later epochs acknowledged first
        _ack(marker)
    assert tracker.confirmable() is None
    _ack(first)
    assert tracker.confirmable() is None  # one of its two partitions is still in flight
    assert ran == []
    _ack(first)
    assert tracker.confirmable() == 300
    assert ran == [100, 200, 300]  # callbacks in epoch order, each once
    assert tracker.acked == 6
    assert tracker.confirmable() is None  # nothing new since


def test_confirmable_stops_at_the_first_epoch_still_in_flight() -> None:
    tracker = AckTracker()
    first, second, third = (_seal(tracker, lsn, 1) for lsn in (10, 20, 30))
    _ack(first)
    _ack(third)
    assert tracker.confirmable() == 10
    _ack(second)
    assert tracker.confirmable() == 30


def test_an_epoch_without_messages_confirms_behind_the_ones_before_it() -> None:
    tracker = AckTracker()
    rows = _seal(tracker, 10, 1)
    _seal(tracker, 20, 0)  # a heartbeat: nothing to deliver
    assert tracker.confirmable() is None
    _ack(rows)
    assert tracker.confirmable() == 20


def test_a_failed_delivery_holds_the_lsn_back_for_good() -> None:
    tracker = AckTracker()
    ran: list[int] = []
    first = _seal(tracker, 10, 1, ran)
    second = _seal(tracker, 20, 1, ran)
    _ack(second)
    _ack(first, KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(DeliveryFailed, match="Kafka did not acknowledge an event") as failed:
        tracker.confirmable()
    assert failed.value.fix and "replays from the slot" in failed.value.fix
    assert ran == []  # neither the failed epoch nor the one after it ran its callback
    with pytest.raises(DeliveryFailed):
        tracker.confirmable()  # still failed: nothing after the failure is ever confirmed
