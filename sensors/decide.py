"""The pure part of the topic sensor: from a cursor of per-partition end offsets and the offsets
observed now, decide what to record and whether downstream batch assets should run.

One observation per tick, aggregated over partitions — never one Dagster event per message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

Offsets = dict[int, int]


@dataclass(frozen=True)
class Decision:
    """What a tick does: the new cursor, how many messages arrived, and whether to act."""

    cursor: Offsets
    new_messages: int
    observe: bool
    request_run: bool


def decide(cursor: Offsets | None, end_offsets: Offsets) -> Decision:
    """Compare the previous end offsets with the current ones.

    The first tick only records a baseline. A partition whose offset went backwards (the topic
    was recreated) restarts from its new offset and counts nothing for that partition.
    """
    if cursor is None:
        return Decision(dict(end_offsets), 0, observe=True, request_run=False)
    arrived = sum(
        max(0, end - cursor.get(p, 0)) for p, end in end_offsets.items() if end >= cursor.get(p, 0)
    )
    return Decision(dict(end_offsets), arrived, observe=arrived > 0, request_run=arrived > 0)


def parse_cursor(text: str | None) -> Offsets | None:
    """Cursor JSON ``{"<partition>": offset}`` to offsets (None when absent)."""
    if not text:
        return None
    return {int(p): int(o) for p, o in json.loads(text).items()}


def dump_cursor(offsets: Offsets) -> str:
    """Offsets to cursor JSON with partitions in order."""
    return json.dumps({str(p): offsets[p] for p in sorted(offsets)})
