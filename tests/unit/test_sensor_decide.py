"""The topic sensor's pure decision."""

from __future__ import annotations

from sensors.decide import decide, dump_cursor, parse_cursor


def test_first_tick_records_a_baseline_without_running() -> None:
    d = decide(None, {0: 10, 1: 5})
    assert (d.cursor, d.new_messages, d.observe, d.request_run) == ({0: 10, 1: 5}, 0, True, False)


def test_new_messages_are_summed_over_partitions() -> None:
    d = decide({0: 10, 1: 5}, {0: 12, 1: 8})
    assert (d.new_messages, d.observe, d.request_run) == (5, True, True)
    assert d.cursor == {0: 12, 1: 8}


def test_nothing_new_does_nothing() -> None:
    d = decide({0: 10}, {0: 10})
    assert (d.new_messages, d.observe, d.request_run) == (0, False, False)


def test_new_partition_counts_from_zero() -> None:
    assert decide({0: 10}, {0: 10, 1: 4}).new_messages == 4


def test_recreated_topic_resets_without_negative_counts() -> None:
    d = decide({0: 100}, {0: 3})
    assert d.new_messages == 0 and d.cursor == {0: 3}


def test_cursor_round_trip() -> None:
    assert parse_cursor(dump_cursor({1: 4, 0: 2})) == {0: 2, 1: 4}
    assert parse_cursor(None) is None and parse_cursor("") is None
