"""A PostgreSQL table as one side of an audit (a CDC source, or a ``postgres_sink`` table).

Digests are computed by PostgreSQL next to the data,
``md5(string_agg(<row text>, '' ORDER BY <key>))`` per chunk, so only a digest and a count
travel per chunk. A one-column key that is not text is bucketed by ``width_bucket(key,
<boundaries>)`` and :data:`CHUNKS_PER_QUERY` chunks are digested per query (one pass over
their key range); other keys (text: its ``COLLATE "C"`` order; composite) take one query per
chunk over a key range the primary key's index serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2
from psycopg2 import sql

from datamesh.audit.normalize import Kind, pg_kind, pg_row_text, pg_text
from datamesh.audit.scope import Exclusion
from datamesh.audit.sides import Digest, KeyText, Progress, RawKey, Row
from datamesh.errors import TerminalError

_BATCH = 500  # keys per re-read query
CHUNKS_PER_QUERY = 100  # chunks digested per query (and per progress report) when bucketed


class PgSide:
    """``schema.table`` in the database of ``dsn``; ``columns`` key columns first."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        table: str,
        key: Sequence[str],
        columns: Sequence[str],
        exclusion: Exclusion,
        label: str,
    ) -> None:
        self.label = label
        self.key, self.columns = tuple(key), tuple(columns)
        self.db = psycopg2.connect(dsn)
        self.db.autocommit = True
        self.table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        types = self._types(schema, table)
        kinds = {c: pg_kind(t) for c, t in types.items()}
        missing = [c for c in self.columns if c not in kinds]
        if missing:
            raise TerminalError(
                f"{label} {schema}.{table} has no column {', '.join(missing)}",
                fix="redeploy the sink (`mesh apply`) so its table has every column",
            )
        self.kinds: dict[str, Kind] = {c: kinds[c] for c in self.columns}
        self.keep = exclusion.sql
        single = len(self.key) == 1 and self.kinds[self.key[0]] != "text"
        self.bucket_type = types[self.key[0]] if single else None

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _types(self, schema: str, table: str) -> dict[str, str]:
        rows = self._fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (schema, table),
        )
        if not rows:
            raise TerminalError(
                f"{self.label} table {schema}.{table} does not exist",
                fix="materialize the product first",
            )
        return {str(n): str(t) for n, t in rows}

    def _fetch(
        self, query: str | sql.Composable, args: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self.db.cursor() as cur:
            cur.execute(query, list(args) or None)  # no args: a literal % stays as it is
            return list(cur.fetchall())

    def _key_sql(self) -> sql.Composable:
        return sql.SQL(", ").join(self._key_column(k) for k in self.key)

    def _key_column(self, k: str) -> sql.Composable:
        ident = sql.Identifier(k)
        # byte order for text keys: the order pyarrow sorts an Iceberg side's keys in
        return sql.SQL('{} COLLATE "C"').format(ident) if self.kinds[k] == "text" else ident

    def _texts_sql(self) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL(pg_text(sql.Identifier(c).as_string(self.db), self.kinds[c]))
            for c in self.columns
        )

    def _where(self, bounds: Sequence[RawKey], index: int) -> tuple[sql.Composable, list[Any]]:
        parts: list[sql.Composable] = (
            [sql.SQL("({})").format(sql.SQL(self.keep))] if self.keep else []
        )
        args: list[Any] = []
        row = sql.SQL("({})").format(self._key_sql())
        marks = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(self.key)))
        if index > 0:
            parts.append(sql.SQL("{} >= {}").format(row, marks))
            args += list(bounds[index - 1])
        if index < len(bounds):
            parts.append(sql.SQL("{} < {}").format(row, marks))
            args += list(bounds[index])
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), args

    def boundaries(self, chunk_rows: int) -> list[RawKey]:
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
        where = sql.SQL(self.keep) if self.keep else sql.SQL("true")
        query = sql.SQL(
            "SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {order}) AS rn "
            "FROM {table} WHERE {where}) s WHERE mod(rn, {n}) = 1 AND rn > 1 ORDER BY rn"
        ).format(
            keys=keys,
            order=self._key_sql(),
            table=self.table,
            where=where,
            n=sql.Literal(chunk_rows),
        )
        return [tuple(r) for r in self._fetch(query)]

    def _row_text(self) -> sql.Composable:
        texts = [pg_text(sql.Identifier(c).as_string(self.db), self.kinds[c]) for c in self.columns]
        return sql.SQL(pg_row_text(texts))

    def digests(self, bounds: Sequence[RawKey], progress: Progress) -> list[Digest]:
        if self.bucket_type is not None:
            return self._bucketed(bounds, progress)
        out = []
        row_text = self._row_text()
        for index in range(len(bounds) + 1):
            where, args = self._where(bounds, index)
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg({row}, '' ORDER BY {order}), '')) "
                "FROM {table} WHERE {where}"
            ).format(row=row_text, order=self._key_sql(), table=self.table, where=where)
            count, md5 = self._fetch(query, args)[0]
            out.append(Digest(int(count), str(md5)))
            progress(self.label, index + 1, len(bounds) + 1)
        return out

    def _bucketed(self, bounds: Sequence[RawKey], progress: Progress) -> list[Digest]:
        """Digests of :data:`CHUNKS_PER_QUERY` chunks per query, bucketed by width_bucket."""
        assert self.bucket_type is not None
        total = len(bounds) + 1
        empty = Digest(0, "d41d8cd98f00b204e9800998ecf8427e")  # md5 of nothing
        out = [empty] * total
        thresholds = [b[0] for b in bounds]
        key = sql.Identifier(self.key[0])
        for first in range(0, total, CHUNKS_PER_QUERY):
            last = min(first + CHUNKS_PER_QUERY, total)  # chunks first .. last-1
            where, args = self._span(bounds, first, last)
            query = sql.SQL(
                "SELECT width_bucket({key}, %s::{typ}[]), count(*), "
                "md5(string_agg({row}, '' ORDER BY {key})) FROM {table} WHERE {where} "
                "GROUP BY 1"
            ).format(
                key=key,
                typ=sql.SQL(self.bucket_type),
                row=self._row_text(),
                table=self.table,
                where=where,
            )
            for chunk, count, md5 in self._fetch(query, [thresholds, *args]):
                out[int(chunk)] = Digest(int(count), str(md5))
            progress(self.label, last, total)
        return out

    def _span(
        self, bounds: Sequence[RawKey], first: int, last: int
    ) -> tuple[sql.Composable, list[Any]]:
        """The condition of chunks ``first`` .. ``last - 1`` together (one-column keys)."""
        key = sql.Identifier(self.key[0])
        parts: list[sql.Composable] = (
            [sql.SQL("({})").format(sql.SQL(self.keep))] if self.keep else []
        )
        args: list[Any] = []
        if first > 0:
            parts.append(sql.SQL("{} >= %s").format(key))
            args.append(bounds[first - 1][0])
        if last - 1 < len(bounds):
            parts.append(sql.SQL("{} < %s").format(key))
            args.append(bounds[last - 1][0])
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), args

    def _rows(self, where: sql.Composable, args: Sequence[Any]) -> dict[KeyText, Row]:
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
        query = sql.SQL("SELECT {keys}, {texts} FROM {table} WHERE {where}").format(
            keys=keys, texts=self._texts_sql(), table=self.table, where=where
        )
        n = len(self.key)
        out = {}
        for r in self._fetch(query, args):
            texts = tuple(str(t) for t in r[n:])
            out[texts[:n]] = Row(tuple(r[:n]), texts)
        return out

    def chunk_rows(self, bounds: Sequence[RawKey], index: int) -> dict[KeyText, Row]:
        where, args = self._where(bounds, index)
        return self._rows(where, args)

    def rows_for(self, keys: Sequence[RawKey]) -> dict[KeyText, Row]:
        out: dict[KeyText, Row] = {}
        row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(k) for k in self.key))
        one = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(self.key)))
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            where = sql.SQL("{} IN ({})").format(row, sql.SQL(", ").join([one] * len(batch)))
            if self.keep:
                where = sql.SQL("({}) AND {}").format(sql.SQL(self.keep), where)
            out.update(self._rows(where, [v for key in batch for v in key]))
        return out

    def key_count(self) -> int:
        where = sql.SQL(self.keep) if self.keep else sql.SQL("true")
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self.table, where)
        return int(self._fetch(query)[0][0])

    def read_keys(self) -> int:
        """Read every key (the bench's baseline); returns how many."""
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
        with self.db.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {}").format(keys, self.table))
            return len(cur.fetchall())
