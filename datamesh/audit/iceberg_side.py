"""An Iceberg table as one side of an audit (an ``iceberg_sink`` table).

The table's compared columns are scanned once (pyiceberg → pyarrow), sorted by key and turned
into row texts with pyarrow compute; a chunk's digest is the MD5 of the contiguous slice of the
row-text buffer between its first and last row, so hashing 1,000,000 rows copies nothing.
Re-reading keys scans the table's current snapshot again (an ``In`` filter on a one-column
key) — unless it is still the snapshot scanned first, whose sorted rows are looked up instead.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyiceberg.table import Table

from datamesh.audit.key_filter import iceberg_filter
from datamesh.audit.normalize import Kind, arrow_kind, arrow_row_text, arrow_text
from datamesh.audit.scope import Exclusion
from datamesh.audit.sides import Digest, KeyText, Progress, RawKey, Row
from datamesh.errors import TerminalError


class IcebergSide:
    """The Iceberg table ``load()`` returns (reloaded for every read of current rows)."""

    def __init__(
        self,
        load: Any,
        key: Sequence[str],
        columns: Sequence[str],
        exclusion: Exclusion,
        label: str,
    ) -> None:
        self.label = label
        self.load = load
        self.key, self.columns = tuple(key), tuple(columns)
        self.keep = exclusion.arrow
        self._sorted: pa.Table | None = None
        self._rows_text: pa.Array | None = None
        self._keys: list[Any] = []
        self._snapshot: int | None = None

    @staticmethod
    def _snapshot_id(table: Table) -> int | None:
        snapshot = table.current_snapshot()
        return None if snapshot is None else int(snapshot.snapshot_id)

    def _scan(self, row_filter: Any = None, table: Table | None = None) -> pa.Table:
        table = table if table is not None else self.load()
        have = {f.name for f in table.schema().fields}
        missing = [c for c in self.columns if c not in have]
        if missing:
            raise TerminalError(
                f"{self.label} table {table.name()} has no column {', '.join(missing)}",
                fix="run the sink once so its table has every column",
            )
        if row_filter is None:
            data = table.scan(selected_fields=self.columns).to_arrow()
        else:
            data = table.scan(row_filter=row_filter, selected_fields=self.columns).to_arrow()
        if self.keep is not None:
            data = data.filter(self.keep)
        return data

    def _kinds(self, data: pa.Table) -> list[Kind]:
        return [arrow_kind(data.schema.field(c).type) for c in self.columns]

    def _texts(self, data: pa.Table) -> list[pa.Array]:
        kinds = self._kinds(data)
        return [arrow_text(data.column(c), k) for c, k in zip(self.columns, kinds, strict=True)]

    def _load_sorted(self) -> pa.Table:
        if self._sorted is None:
            table = self.load()
            self._snapshot = self._snapshot_id(table)
            data = self._scan(table=table)
            data = data.sort_by([(k, "ascending") for k in self.key])
            self._sorted = data
            texts = self._texts(data)
            self._rows_text = arrow_row_text(texts) if len(data) else pa.array([], pa.string())
            keys = [data.column(k).to_pylist() for k in self.key]
            self._keys = keys[0] if len(keys) == 1 else list(zip(*keys, strict=True))
        return self._sorted

    def _index(self, bound: RawKey) -> int:
        target: Any = bound[0] if len(self.key) == 1 else tuple(bound)
        return bisect.bisect_left(self._keys, target)

    def _range(self, bounds: Sequence[RawKey], index: int) -> tuple[int, int]:
        self._load_sorted()
        start = self._index(bounds[index - 1]) if index > 0 else 0
        end = self._index(bounds[index]) if index < len(bounds) else len(self._keys)
        return start, end

    def boundaries(self, chunk_rows: int) -> list[RawKey]:
        self._load_sorted()
        picks = range(chunk_rows, len(self._keys), chunk_rows)
        return [self._keys[i] if len(self.key) > 1 else (self._keys[i],) for i in picks]

    def digests(self, bounds: Sequence[RawKey], progress: Progress) -> list[Digest]:
        self._load_sorted()
        assert self._rows_text is not None
        text = self._rows_text
        offsets = text.buffers()[1]
        data = text.buffers()[2]
        positions = None
        if len(text):
            positions = pa.Array.from_buffers(
                pa.int32(), len(text) + 1, [None, offsets], offset=text.offset
            ).to_pylist()
        out = []
        for index in range(len(bounds) + 1):
            start, end = self._range(bounds, index)
            if positions is None or start == end:
                out.append(Digest(0, hashlib.md5(b"").hexdigest()))
            else:
                chunk = memoryview(data)[int(positions[start]) : int(positions[end])]
                out.append(Digest(end - start, hashlib.md5(chunk).hexdigest()))
            progress(self.label, index + 1, len(bounds) + 1)
        return out

    def _rows_of(self, data: pa.Table) -> dict[KeyText, Row]:
        if not len(data):
            return {}
        texts = [t.to_pylist() for t in self._texts(data)]
        raws = [data.column(k).to_pylist() for k in self.key]
        n = len(self.key)
        out = {}
        for i, row in enumerate(zip(*texts, strict=True)):
            out[tuple(row[:n])] = Row(tuple(r[i] for r in raws), tuple(row))
        return out

    def chunk_rows(self, bounds: Sequence[RawKey], index: int) -> dict[KeyText, Row]:
        data = self._load_sorted()
        start, end = self._range(bounds, index)
        return self._rows_of(data.slice(start, end - start))

    def rows_for(self, keys: Sequence[RawKey]) -> dict[KeyText, Row]:
        if not keys:
            return {}
        table = self.load()
        if self._sorted is not None and self._snapshot_id(table) == self._snapshot:
            return self._cached(keys)  # nothing was committed since the first scan
        if len(self.key) == 1:
            data = self._scan(iceberg_filter(self.key, keys), table=table)
            return self._rows_of(data)
        wanted = {tuple(k) for k in keys}
        rows = self._rows_of(self._scan(table=table))
        return {t: r for t, r in rows.items() if r.raw in wanted}

    def _cached(self, keys: Sequence[RawKey]) -> dict[KeyText, Row]:
        assert self._sorted is not None
        found = []
        for raw in keys:
            target: Any = raw[0] if len(self.key) == 1 else tuple(raw)
            at = bisect.bisect_left(self._keys, target)
            if at < len(self._keys) and self._keys[at] == target:
                found.append(at)
        return self._rows_of(self._sorted.take(pa.array(found, pa.int64())))

    def key_count(self) -> int:
        return len(self._load_sorted())

    def read_keys(self) -> int:
        """Read every key (the bench's baseline); returns how many."""
        return len(self.load().scan(selected_fields=self.key).to_arrow())
