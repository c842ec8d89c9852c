"""Run snapshot requests chunk by chunk through the DBLog window, resumably.

Progress moves in two steps. In memory, the next chunk starts right after the previous one's
high watermark was reconciled. In the database, a chunk's progress is saved only once Kafka
acknowledged its rows (the callback :meth:`SnapshotRunner.emitted` returns runs when the
watermark transaction's epoch is acknowledged), so after a crash the snapshot resumes at the
first chunk that might be missing from Kafka: rows may repeat, none are skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datamesh.cdc import snapshot_store as store
from datamesh.cdc.dblog import Chunk, Key, Window
from datamesh.cdc.pgoutput import Row

REQUEST_POLL_S = 2.0  # how often an idle runner looks for new requests
PROGRESS_EVERY_S = 1.0


@dataclass
class _Active:
    """In-memory progress of the request being worked on."""

    request: store.SnapshotRequest
    last_key: tuple[str, ...] | None
    rows_done: int
    total: int


class SnapshotRunner:
    """Selects chunks between watermark writes; the stream reports the watermarks back."""

    def __init__(
        self,
        cur: Any,
        slot: str,
        tables: Sequence[str],
        chunk_size: int,
        pause_s: float,
        log: Callable[[str], None],
    ) -> None:
        self.window = Window()
        self._cur = cur
        self._slot = slot
        self._tables = tuple(tables)
        self._chunk_size = chunk_size
        self._pause_s = pause_s
        self._log = log
        self._active: _Active | None = None
        self._next_chunk_at = 0.0
        self._next_poll_at = 0.0
        self._last_print = 0.0

    @property
    def active_table(self) -> str | None:
        """The table being snapshotted, if any."""
        return self._active.request.table if self._active else None

    def tick(self, paused: Callable[[str], bool]) -> None:
        """Select the next chunk if none is in flight (and its table is not paused)."""
        now = time.monotonic()
        if self.window.chunk is not None or now < self._next_chunk_at:
            return
        active = self._active or self._load(now)
        if active is not None and not paused(active.request.table):
            self._select(active)

    def reset(self) -> None:
        """Forget in-memory progress (stream restarted): resume from what was persisted."""
        self.window.discard()
        self._active = None
        self._next_poll_at = 0.0

    def _load(self, now: float) -> _Active | None:
        if now < self._next_poll_at:
            return None
        self._next_poll_at = now + REQUEST_POLL_S
        request = store.next_request(self._cur, self._slot, self._tables)
        if request is None:
            return None
        total = request.total_estimate
        if total is None:
            total = store.estimate_rows(self._cur, request.table, request.where)
        self._active = _Active(request, request.last_key, request.rows_done, total)
        where = f" where {request.where}" if request.where else ""
        self._log(f"snapshot {request.table}{where}: from row {request.rows_done} of ~{total}")
        return self._active

    def _select(self, active: _Active) -> None:
        req = active.request
        low, high = f"low:{uuid.uuid4()}", f"high:{uuid.uuid4()}"
        store.write_watermark(self._cur, self._slot, low)
        # one row more than a chunk: tells whether this is the last one (source.snapshot=last)
        shape, rows = store.read_chunk(
            self._cur, req.table, req.where, active.last_key, self._chunk_size + 1
        )
        store.write_watermark(self._cur, self._slot, high)
        final = len(rows) <= self._chunk_size
        rows = rows[: self._chunk_size]
        positions = [next(i for i, c in enumerate(shape.columns) if c.name == k) for k in shape.key]
        keyed: dict[Key, Row] = {tuple([row[i] for i in positions]): row for row in rows}
        last = rows[-1] if rows else None
        last_key = tuple(str(last[i], "utf-8") for i in positions) if last else None  # type: ignore[arg-type]
        self.window.begin(Chunk(req.table, low, high, shape, keyed, last_key, final))

    def emitted(self, chunk: Chunk) -> Callable[[], None]:
        """Advance past ``chunk`` (its rows were just produced); returns the persist step."""
        active = self._active
        if active is None or active.request.table != chunk.table:
            return lambda: None
        active.last_key = chunk.last_key or active.last_key
        active.rows_done += chunk.selected
        if chunk.final:
            self._active = None
        self._next_chunk_at = time.monotonic() + self._pause_s
        saved = (active.request, active.last_key, active.rows_done, active.total, chunk.final)
        return lambda: self._persist(*saved)

    def _persist(
        self,
        request: store.SnapshotRequest,
        last_key: tuple[str, ...] | None,
        rows_done: int,
        total: int,
        done: bool,
    ) -> None:
        current = store.save_progress(
            self._cur, self._slot, request, last_key, rows_done, total, done
        )
        if not current and self._active is not None and self._active.request == request:
            self._active = None  # a newer request replaced this one: pick it up
        now = time.monotonic()
        if done or now - self._last_print >= PROGRESS_EVERY_S:
            self._last_print = now
            pct = min(100.0, 100.0 * rows_done / total) if total else 100.0
            state = "done" if done else "running"
            self._log(f"snapshot {request.table}: {rows_done}/{total} rows ({pct:.0f}%) {state}")
