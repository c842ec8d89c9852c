"""DBLog's watermark window over one snapshot chunk (pure; no I/O).

DBLog (Andreadakis & Papapanagiotou, Netflix, 2020, https://arxiv.org/abs/2010.12597)
interleaves table chunks with the change log without locks:

1. write a *low* watermark (an UPDATE of the connector's watermark row: it enters the log);
2. select the chunk: ``WHERE pk > last ORDER BY pk LIMIT n``;
3. write a *high* watermark.

While the stream is between the two watermark events, every change to a key of the chunk
removes that row from the chunk: the log carries a value at least as new. At the high
watermark, the rows left are emitted (op ``r``) at that position of the log, so for every key
the last event in Kafka is the table's latest value. :class:`Window` keeps that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datamesh.cdc.pgoutput import Row
from datamesh.cdc.schemas import TableShape

Key = tuple[object, ...]


@dataclass
class Chunk:
    """One selected chunk awaiting its watermarks; ``rows`` keep primary-key order."""

    table: str
    low: str
    high: str
    shape: TableShape
    rows: dict[Key, Row]
    last_key: tuple[str, ...] | None  # key of the last selected row: where the next chunk starts
    final: bool  # fewer rows than asked: the table (or key range) is done after this one
    selected: int = 0
    opened: bool = field(default=False)

    def __post_init__(self) -> None:
        self.selected = len(self.rows)


class Window:
    """At most one chunk in flight, reconciled against the change stream."""

    def __init__(self) -> None:
        self.chunk: Chunk | None = None

    def begin(self, chunk: Chunk) -> None:
        """Track ``chunk`` (selected between its two watermark writes)."""
        self.chunk = chunk

    def on_watermark(self, mark: str) -> Chunk | None:
        """Feed a watermark value seen in the stream; returns the chunk to emit at its high.

        A high watermark whose low one was never seen (a stream restarted in between) drops the
        chunk instead: without the window its rows cannot be trusted, so it is selected again.
        """
        chunk = self.chunk
        if chunk is None:
            return None
        if mark == chunk.low:
            chunk.opened = True
        elif mark == chunk.high:
            self.chunk = None
            return chunk if chunk.opened else None
        return None

    def on_change(self, table: str, key: Key) -> None:
        """A logged change of ``table``'s row ``key``: the log wins over the chunk."""
        chunk = self.chunk
        if chunk is not None and chunk.opened and chunk.table == table:
            chunk.rows.pop(key, None)

    def on_truncate(self, table: str) -> None:
        """TRUNCATE inside the window: every selected row of ``table`` is stale."""
        chunk = self.chunk
        if chunk is not None and chunk.opened and chunk.table == table:
            chunk.rows.clear()

    def discard(self) -> Chunk | None:
        """Forget the chunk in flight (stream restarted); returns it, if any."""
        chunk, self.chunk = self.chunk, None
        return chunk
