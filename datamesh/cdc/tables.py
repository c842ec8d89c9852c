"""The tables one connector captures: topic, current codec, and whether they are paused.

A paused table stops flowing without stopping the others. The connector never confirms the
slot past the last commit before the table's first unpublished event (``Pause.since_lsn``),
so once the cause is fixed (``Pause.probe`` says so, or the connector restarts) the stream is
replayed from there and nothing of the paused table is lost; the other tables' events in that
stretch are sent again (at-least-once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from datamesh.cdc.codec import TableCodec
from datamesh.errors import MeshError


@dataclass
class Pause:
    """Why a table stopped, from which confirmed LSN, and how to tell it was fixed."""

    error: MeshError
    since_lsn: int
    probe: Callable[[], bool] | None = None  # True once the cause is gone (then: replay)


@dataclass
class CapturedTable:
    """One captured table (``schema.table``) and its stream state."""

    name: str
    topic: str
    key: tuple[str, ...]
    compacted: bool
    relid: int | None = None
    codec: TableCodec | None = None
    paused: Pause | None = None
    events: int = 0

    def status(self) -> dict[str, object]:
        """The table's entry in the status file."""
        return {
            "topic": self.topic,
            "events": self.events,
            "paused": str(self.paused.error) if self.paused else None,
        }


@dataclass
class Tables:
    """Captured tables by name and by relation OID (learnt from Relation messages)."""

    by_name: dict[str, CapturedTable]
    by_relid: dict[int, CapturedTable] = field(default_factory=dict)
    watermark_relid: int | None = None

    def paused(self, name: str) -> bool:
        """True when ``name`` is paused."""
        table = self.by_name.get(name)
        return table is not None and table.paused is not None

    def by_topic(self, topic: str) -> CapturedTable | None:
        """The captured table published to ``topic`` (None: none is)."""
        return next((t for t in self.by_name.values() if t.topic == topic), None)

    def pauses(self) -> list[CapturedTable]:
        """Paused tables."""
        return [t for t in self.by_name.values() if t.paused is not None]

    def forget_stream_state(self) -> None:
        """Before replaying the stream: codecs and pauses are rebuilt from Relation messages."""
        for table in self.by_name.values():
            table.codec = None
            table.paused = None
        self.by_relid.clear()
        self.watermark_relid = None
