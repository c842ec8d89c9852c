"""Human durations in declarations: ``500ms``, ``30s``, ``5m``, ``2h``, ``7d``, ``infinite``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str | int) -> timedelta:
    """Parse ``<int><unit>`` (units ms, s, m, h, d, w); a bare int means seconds."""
    if isinstance(text, int):
        return timedelta(seconds=text)
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit such as 30s, 5m, 2h or 7d"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def retention_ms(text: str | int) -> int:
    """Kafka ``retention.ms`` for a declared retention; ``infinite`` maps to -1."""
    if str(text).strip() == "infinite":
        return -1
    return int(parse_duration(text).total_seconds() * 1000)
