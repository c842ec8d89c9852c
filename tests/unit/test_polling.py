"""The one polling loop: answers, time-outs, early stops."""

from __future__ import annotations

import itertools
import time

import pytest

from datamesh.polling import poll


def test_the_first_truthy_answer_is_returned() -> None:
    answers = iter([None, 0, "", {"state": "streaming"}, "later"])
    assert poll(lambda: next(answers), timeout_s=5, interval_s=0.01) == {"state": "streaming"}
    assert next(answers) == "later"  # asked no further


def test_time_up_gives_none_after_asking_at_the_deadline() -> None:
    asked = itertools.count()
    started = time.monotonic()
    assert poll(lambda: next(asked) < 0, timeout_s=0.3, interval_s=0.1) is None
    waited = time.monotonic() - started
    assert 0.3 <= waited < 1.0
    assert 3 <= next(asked) <= 6  # about every interval, and once more at the deadline


def test_a_probe_that_raises_stops_the_wait() -> None:
    def probe() -> bool:
        raise RuntimeError("the process died")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="died"):
        poll(probe, timeout_s=30)
    assert time.monotonic() - started < 1


def test_a_zero_timeout_asks_once() -> None:
    asked: list[int] = []
    assert poll(lambda: asked.append(1), timeout_s=0) is None
    assert asked == [1]
