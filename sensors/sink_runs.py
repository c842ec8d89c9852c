"""The pure part of keeping sinks current: which sink runs a topic's tick requests.

Inputs per sink fed by the topic: the offsets its table committed (the table is the record of
progress), whether a run of it is queued or running, and the run key of its last run if that
run failed. A sink behind the topic's end offsets gets one run whose ``run_key`` is the offset
range ``<sink>:<partition>:<from>-<to>,...`` — so a burst between ticks is one run, and Dagster
never launches the same range twice. A failed run is retried on the next tick under
``<range>#retry<n>``; while a run is in flight nothing new is requested (its successor starts
from the offsets it commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Offsets = dict[int, int]


@dataclass(frozen=True)
class SinkState:
    """What the sensor knows about one sink when it ticks."""

    sink: str
    committed: Offsets
    in_flight: bool = False
    last_failed_key: str | None = None


@dataclass(frozen=True)
class SinkRequest:
    """A run of ``sink`` over ``start``..``end`` (per partition), deduplicated by ``run_key``."""

    sink: str
    run_key: str
    start: Offsets
    end: Offsets


def range_text(start: Offsets, end: Offsets) -> str:
    """``<partition>:<from>-<to>`` per partition, in partition order."""
    return ",".join(f"{p}:{start.get(p, 0)}-{end[p]}" for p in sorted(end))


def sink_requests(end: Offsets, sinks: Sequence[SinkState]) -> list[SinkRequest]:
    """The runs to request now (see the module docstring)."""
    out = []
    for s in sinks:
        behind = any(e > s.committed.get(p, 0) for p, e in end.items())
        if s.in_flight or not behind:
            continue
        key = f"{s.sink}:{range_text(s.committed, end)}"
        failed = s.last_failed_key
        if failed is not None and failed.split("#retry")[0] == key:
            attempt = int(failed.split("#retry")[1]) + 1 if "#retry" in failed else 1
            key = f"{key}#retry{attempt}"
        out.append(SinkRequest(s.sink, key, dict(s.committed), dict(end)))
    return out
