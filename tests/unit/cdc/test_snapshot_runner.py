"""SnapshotRunner over a fake source database: each chunk is read between a low and a high
watermark write, the next starts after the last key of the one emitted, and progress is saved
only by the callback that runs once Kafka acknowledged the chunk (pure: no PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from datamesh.cdc import snapshot_store
from datamesh.cdc.dblog import Chunk
from datamesh.cdc.pgoutput import Column, Row
from datamesh.cdc.schemas import TableShape
from datamesh.cdc.snapshot import SnapshotRunner
from datamesh.cdc.snapshot_store import SnapshotRequest

TABLE = "public.movies"
SLOT = "studio_slot"
SHAPE = TableShape(
    "public", "movies", (Column(False, "title", 25, -1), Column(True, "id", 23, -1)), ("id",)
)


class FakeSource:
    """The snapshot_store functions against an in-memory table; every call is logged."""

    def __init__(self, ids: range, request: SnapshotRequest | None = None) -> None:
        self.rows: list[Row] = [(b"t%d" % i, b"%d" % i) for i in ids]  # key is column 2
        self.request = request or SnapshotRequest(TABLE, None, None, 0, None, "t0")
        self.calls: list[tuple[Any, ...]] = []
        self.current = True  # False: a newer request replaced this one

    def next_request(
        self, cur: object, slot: str, tables: tuple[str, ...]
    ) -> SnapshotRequest | None:
        self.calls.append(("next_request", slot))
        return self.request if self.request.table in tables else None

    def estimate_rows(self, cur: object, table: str, where: str | None) -> int:
        return len(self.rows)

    def write_watermark(self, cur: object, slot: str, mark: str) -> None:
        self.calls.append(("watermark", slot, mark))

    def read_chunk(
        self, cur: object, table: str, where: str | None, after: tuple[str, ...] | None, limit: int
    ) -> tuple[TableShape, list[Row]]:
        self.calls.append(("read", table, after, limit))
        start = 0 if after is None else int(after[0])
        rows = [r for r in self.rows if int(r[1]) > start]  # type: ignore[arg-type]
        return SHAPE, rows[:limit]

    def save_progress(
        self,
        cur: object,
        slot: str,
        request: SnapshotRequest,
        last_key: tuple[str, ...] | None,
        rows_done: int,
        total: int | None,
        done: bool,
    ) -> bool:
        self.calls.append(("save", last_key, rows_done, total, done))
        return self.current

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> FakeSource:
    fake = FakeSource(range(1, 8))  # ids 1..7
    for name in ("next_request", "estimate_rows", "write_watermark", "read_chunk", "save_progress"):
        monkeypatch.setattr(snapshot_store, name, getattr(fake, name))
    return fake


def _runner(pause_s: float = 0.0) -> SnapshotRunner:
    return SnapshotRunner(
        object(), SLOT, (TABLE,), chunk_size=3, pause_s=pause_s, log=lambda line: None
    )


def _through_window(runner: SnapshotRunner) -> Chunk:
    """The stream sees the chunk's low then high watermark."""
    chunk = runner.window.chunk
    assert chunk is not None
    assert runner.window.on_watermark(chunk.low) is None
    emitted = runner.window.on_watermark(chunk.high)
    assert emitted is chunk
    return chunk


def test_a_chunk_is_read_between_its_low_and_high_watermark(source: FakeSource) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: False)
    assert source.names() == ["next_request", "watermark", "read", "watermark"]
    (_, _, low), read, (_, _, high) = source.calls[1:]
    assert read == ("read", TABLE, None, 4)  # one row more than a chunk: is this the last?
    chunk = runner.window.chunk
    assert chunk is not None and (chunk.low, chunk.high) == (low, high)
    assert low.startswith("low:") and high.startswith("high:") and low[4:] != high[5:]
    assert list(chunk.rows) == [(b"1",), (b"2",), (b"3",)]  # keyed by the key column only
    assert chunk.rows[(b"2",)] == (b"t2", b"2")
    assert chunk.last_key == ("3",) and not chunk.final and chunk.selected == 3
    assert runner.active_table == TABLE


def test_no_second_chunk_while_one_is_in_flight_or_its_table_paused(source: FakeSource) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: True)
    assert "read" not in source.names() and runner.window.chunk is None
    runner.tick(paused=lambda table: False)
    runner.tick(paused=lambda table: False)
    assert source.names().count("read") == 1


def test_progress_moves_on_in_memory_and_is_saved_only_once_acknowledged(
    source: FakeSource,
) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: False)
    persist = runner.emitted(_through_window(runner))
    runner.tick(paused=lambda table: False)  # the next chunk starts after key 3 at once
    assert source.calls[-2] == ("read", TABLE, ("3",), 4)
    assert "save" not in source.names()  # Kafka has not acknowledged the first chunk yet
    persist()
    assert source.calls[-1] == ("save", ("3",), 3, 7, False)


def test_rows_dropped_by_the_window_still_count_as_done(source: FakeSource) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: False)
    chunk = runner.window.chunk
    assert chunk is not None
    runner.window.on_watermark(chunk.low)
    runner.window.on_change(TABLE, (b"3",))  # the log carries key 3: the chunk drops it
    assert runner.window.on_watermark(chunk.high) is chunk
    assert list(chunk.rows) == [(b"1",), (b"2",)]
    runner.emitted(chunk)()
    assert source.calls[-1] == ("save", ("3",), 3, 7, False)  # resumes after 3, not after 2


def test_the_last_chunk_finishes_the_request(source: FakeSource) -> None:
    runner = _runner()
    saves: list[tuple[Any, ...]] = []
    for _ in range(3):
        runner.tick(paused=lambda table: False)
        runner.emitted(_through_window(runner))()
        saves.append(source.calls[-1])
    assert saves == [
        ("save", ("3",), 3, 7, False),
        ("save", ("6",), 6, 7, False),
        ("save", ("7",), 7, 7, True),  # 1 row < chunk size: final
    ]
    assert runner.active_table is None


def test_a_pause_between_chunks(source: FakeSource) -> None:
    runner = _runner(pause_s=3600)
    runner.tick(paused=lambda table: False)
    runner.emitted(_through_window(runner))
    runner.tick(paused=lambda table: False)
    assert source.names().count("read") == 1


def test_reset_forgets_the_chunk_and_resumes_from_what_was_saved(source: FakeSource) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: False)
    runner.emitted(_through_window(runner))  # emitted but never acknowledged: not persisted
    runner.tick(paused=lambda table: False)
    runner.reset()  # the stream broke
    assert runner.window.chunk is None and runner.active_table is None
    runner.tick(paused=lambda table: False)
    assert source.names()[-4:] == ["next_request", "watermark", "read", "watermark"]
    assert source.calls[-2] == ("read", TABLE, None, 4)  # from the persisted (empty) position


def test_a_request_replaced_meanwhile_is_dropped_for_the_newer_one(source: FakeSource) -> None:
    runner = _runner()
    runner.tick(paused=lambda table: False)
    persist = runner.emitted(_through_window(runner))
    source.current = False
    persist()
    assert runner.active_table is None  # the next tick loads the newer request
