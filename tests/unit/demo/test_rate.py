"""``mesh demo --rate``: strict parsing, with an error naming the value and the fix."""

from __future__ import annotations

import pytest

from datamesh.demo.rate import parse_rate
from datamesh.errors import TerminalError


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("200/s", 200.0), ("5/s", 5.0), ("0.5/s", 0.5), ("30/m", 0.5), ("30/min", 0.5),
     ("3600/h", 1.0), (" 7/s ", 7.0), ("10000/s", 10_000.0)],
)  # fmt: skip
def test_rates_in_changes_per_second(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize(
    ("text", "problem"),
    [("200", "is not a rate"), ("200/sec", "is not a rate"), ("/s", "is not a rate"),
     ("-5/s", "is not a rate"), ("5 / s", "is not a rate"), ("1e3/s", "is not a rate"),
     ("fast", "is not a rate"), ("", "is not a rate"), ("0/s", "writes nothing"),
     ("0.0/m", "writes nothing"), ("20000/s", "above 10000/s")],
)  # fmt: skip
def test_bad_rates_name_the_value_and_the_fix(text: str, problem: str) -> None:
    with pytest.raises(TerminalError, match=problem) as caught:
        parse_rate(text)
    assert repr(text) in str(caught.value)
    assert caught.value.fix
