"""``mesh demo --rate``: how many changes per second the generator writes, parsed strictly."""

from __future__ import annotations

import re

from datamesh.errors import TerminalError

DEFAULT_RATE = "5/s"
MAX_PER_SECOND = 10_000.0  # far beyond what one Python writer on one core keeps up with
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE = re.compile(r"(?P<count>\d+(?:\.\d+)?)/(?P<unit>s|m|min|h)")


def parse_rate(text: str) -> float:
    """Changes per second of ``<number>/<unit>`` (unit ``s``, ``m``/``min`` or ``h``), e.g.
    ``200/s`` → 200.0, ``30/m`` → 0.5. Anything else, zero, or more than
    :data:`MAX_PER_SECOND` raises :class:`TerminalError` naming the value and the fix."""
    match = _RATE.fullmatch(text.strip())
    fix = "write --rate <number>/s (or /m, /h), e.g. --rate 200/s"
    if match is None:
        raise TerminalError(f"--rate {text!r} is not a rate", fix=fix)
    per_second = float(match["count"]) / _UNITS[match["unit"]]
    if per_second <= 0:
        raise TerminalError(f"--rate {text!r} writes nothing", fix=fix)
    if per_second > MAX_PER_SECOND:
        raise TerminalError(
            f"--rate {text!r} is above {MAX_PER_SECOND:.0f}/s", fix="choose a lower rate"
        )
    return per_second
