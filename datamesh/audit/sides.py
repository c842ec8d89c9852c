"""What the comparison needs of each side of an audit, whatever holds the table.

A side reads its table's rows as canonical texts (:mod:`datamesh.audit.normalize`): per chunk
of keys a digest and a count, the rows of one chunk, or the rows of given keys. Keys are
identified by their canonical texts (``KeyText``), equal on both sides for equal values; the
raw values are kept to query by (``raw``). Chunk ``i`` of boundaries ``b`` holds the keys
``b[i-1] <= key < b[i]`` (the first chunk has no lower bound, the last no upper one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

KeyText = tuple[str, ...]
RawKey = tuple[object, ...]
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class Row:
    """One row: its key's raw values and the canonical text of every compared column."""

    raw: RawKey
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Digest:
    """A chunk's row count and MD5 of its row texts in key order."""

    count: int
    md5: str


class Side(Protocol):
    """One table of an audit (source or sink); ``columns`` in the audit's order, key first."""

    label: str

    def boundaries(self, chunk_rows: int) -> list[RawKey]:
        """Every ``chunk_rows``-th key in key order (the first excluded): chunk limits."""
        ...

    def digests(self, bounds: Sequence[RawKey], progress: Progress) -> list[Digest]:
        """One digest per chunk (``len(bounds) + 1`` of them)."""
        ...

    def chunk_rows(self, bounds: Sequence[RawKey], index: int) -> dict[KeyText, Row]:
        """The rows of chunk ``index``."""
        ...

    def rows_for(self, keys: Sequence[RawKey]) -> dict[KeyText, Row]:
        """The rows, read now, of the given keys (absent keys are left out)."""
        ...

    def key_count(self) -> int:
        """The number of rows (after exclusions)."""
        ...
