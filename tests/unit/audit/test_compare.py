"""The comparison's logic over in-memory sides and a fake clock: chunk digests, row diffs, and
the in-flight rule (settle when both sides agree, restart when the source moves, confirm after
the grace, give up as unsettled after three graces)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from datamesh.audit.compare import Comparison, Difference, compare, diff_rows, differing_chunks
from datamesh.audit.sides import Digest, KeyText, Progress, RawKey, Row

NAMES = ("id", "title")


class MemorySide:
    """A side over ``{id: title}``; ``script`` maps a re-read number to a change of the rows."""

    def __init__(
        self,
        rows: dict[int, str],
        label: str,
        script: dict[int, Callable[[dict[int, str]], None]] | None = None,
    ) -> None:
        self.rows, self.label, self.script, self.reads = dict(rows), label, script or {}, 0

    def _row(self, i: int) -> Row:
        return Row((i,), (str(i), self.rows[i]))

    def _chunk(self, bounds: Sequence[RawKey], index: int) -> list[int]:
        lo = int(str(bounds[index - 1][0])) if index > 0 else None
        hi = int(str(bounds[index][0])) if index < len(bounds) else None
        return sorted(i for i in self.rows if (lo is None or i >= lo) and (hi is None or i < hi))

    def boundaries(self, chunk_rows: int) -> list[RawKey]:
        keys = sorted(self.rows)
        return [(k,) for k in keys[chunk_rows::chunk_rows]]

    def digests(self, bounds: Sequence[RawKey], progress: Progress) -> list[Digest]:
        out = []
        for index in range(len(bounds) + 1):
            ids = self._chunk(bounds, index)
            text = "".join("\t".join(self._row(i).texts) + "\n" for i in ids)
            out.append(Digest(len(ids), hashlib.md5(text.encode()).hexdigest()))
        return out

    def chunk_rows(self, bounds: Sequence[RawKey], index: int) -> dict[KeyText, Row]:
        return {(str(i),): self._row(i) for i in self._chunk(bounds, index)}

    def rows_for(self, keys: Sequence[RawKey]) -> dict[KeyText, Row]:
        self.reads += 1
        if self.reads in self.script:
            self.script[self.reads](self.rows)
        ids = [int(str(k[0])) for k in keys]
        return {(str(i),): self._row(i) for i in ids if i in self.rows}

    def key_count(self) -> int:
        return len(self.rows)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


ROWS = {i: f"t{i}" for i in range(1, 101)}


def _compare(source: MemorySide, sink: MemorySide, clock: Clock, grace: float = 10) -> Comparison:
    return compare(
        source, sink, NAMES, grace, chunk_rows=10, recheck_s=1, clock=clock, sleep=clock.sleep
    )


def test_equal_tables_compare_chunks_only() -> None:
    clock = Clock()
    result = _compare(MemorySide(ROWS, "s"), MemorySide(ROWS, "k"), clock)
    assert (result.chunks, result.chunks_differing, result.differences) == (10, 0, [])
    assert clock.now == 0  # nothing to re-check: no waiting


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.pop(42), Difference(("42",), (42,), "missing")),
        (lambda r: r.update({500: "x"}), Difference(("500",), (500,), "extra")),
        (lambda r: r.update({7: "other"}), Difference(("7",), (7,), "differs", ("title",))),
    ],
)
def test_a_lasting_difference_is_confirmed_after_the_grace(
    change: Callable[[dict[int, str]], object], expected: Difference
) -> None:
    sink_rows = dict(ROWS)
    change(sink_rows)
    clock = Clock()
    result = _compare(MemorySide(ROWS, "s"), MemorySide(sink_rows, "k"), clock)
    assert result.differences == [expected]
    assert result.chunks_differing == 1
    assert clock.now == pytest.approx(10)  # confirmed exactly when the grace had passed


def test_a_change_that_arrives_within_the_grace_settles() -> None:
    sink_rows = dict(ROWS)
    sink_rows.pop(3)
    sink = MemorySide(sink_rows, "k", {4: lambda r: r.update({3: "t3"})})  # arrives on read 4
    clock = Clock()
    result = _compare(MemorySide(ROWS, "s"), sink, clock)
    assert result.differences == [] and result.settled == 1
    assert clock.now == pytest.approx(4)


def test_a_moving_source_restarts_the_clock_then_gives_up_as_unsettled() -> None:
    counter = iter(range(10_000))
    moving = {n: (lambda r: r.update({5: f"v{next(counter)}"})) for n in range(1, 100)}
    clock = Clock()
    sink = MemorySide({**ROWS, 5: "stale"}, "k")  # the sink never catches up with key 5
    result = _compare(MemorySide(ROWS, "s", moving), sink, clock)
    assert result.differences == []  # never a failure: the source never held still
    assert [d.key for d in result.unsettled] == [("5",)]
    assert clock.now == pytest.approx(30)


def test_diff_rows_and_chunks_are_pure() -> None:
    a: dict[KeyText, Row] = {("1",): Row((1,), ("1", "a")), ("2",): Row((2,), ("2", "b"))}
    b: dict[KeyText, Row] = {("2",): Row((2,), ("2", "B")), ("3",): Row((3,), ("3", "c"))}
    assert diff_rows(a, b, NAMES) == [
        Difference(("1",), (1,), "missing"),
        Difference(("2",), (2,), "differs", ("title",)),
        Difference(("3",), (3,), "extra"),
    ]
    assert differing_chunks([Digest(1, "a"), Digest(2, "b")], [Digest(1, "a"), Digest(2, "c")]) == [
        1
    ]
