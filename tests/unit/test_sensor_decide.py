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


# -- sink runs -------------------------------------------------------------------------------

from sensors.sink_runs import SinkState, sink_requests  # noqa: E402


def test_a_burst_between_ticks_is_one_run_with_the_exact_range() -> None:
    (req,) = sink_requests({0: 10_500, 1: 300}, [SinkState("d.t", {0: 500, 1: 300})])
    assert req.run_key == "d.t:0:500-10500,1:300-300"
    assert (req.start, req.end) == ({0: 500, 1: 300}, {0: 10_500, 1: 300})


def test_an_up_to_date_or_busy_sink_gets_nothing() -> None:
    assert sink_requests({0: 5}, [SinkState("d.t", {0: 5})]) == []
    assert sink_requests({0: 9}, [SinkState("d.t", {0: 5}, in_flight=True)]) == []


def test_a_new_table_starts_from_the_beginning() -> None:
    (req,) = sink_requests({0: 3}, [SinkState("d.t", {})])
    assert req.run_key == "d.t:0:0-3"


def test_a_failed_range_is_retried_under_a_new_key() -> None:
    state = SinkState("d.t", {0: 5}, last_failed_key="d.t:0:5-9")
    assert sink_requests({0: 9}, [state])[0].run_key == "d.t:0:5-9#retry1"
    state = SinkState("d.t", {0: 5}, last_failed_key="d.t:0:5-9#retry1")
    assert sink_requests({0: 9}, [state])[0].run_key == "d.t:0:5-9#retry2"
    # more data since the failure: a new range, a fresh key
    state = SinkState("d.t", {0: 5}, last_failed_key="d.t:0:5-9#retry2")
    assert sink_requests({0: 12}, [state])[0].run_key == "d.t:0:5-12"


def test_each_sink_of_a_topic_is_decided_alone() -> None:
    reqs = sink_requests({0: 9}, [SinkState("d.a", {0: 9}), SinkState("d.b", {0: 2})])
    assert [r.sink for r in reqs] == ["d.b"]
