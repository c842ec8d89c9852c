"""Audit cost on 1,000,000 rows, against reading both tables' keys, on the running stack.

``run()`` builds, in throw-away databases and an Iceberg namespace (no Kafka: the rows are
written directly, the same values on every side):

- the source: PostgreSQL ``public.movies`` (``id`` bigint key, title, status with NULLs,
  ``budget`` numeric(12,2), ``updated_at`` timestamp), :data:`ROWS` rows;
- an Iceberg table with the same rows (pyarrow → pyiceberg ``append``), the sink the main
  figures audit;
- a PostgreSQL copy (the table a ``postgres_sink`` would hold), for the ``pg_sink_*`` figures.

Figures (seconds, one run each, ``chunk_rows`` :data:`CHUNK_ROWS`):

- ``key_read_baseline_s``: reading every key of the source (psycopg2) and of the Iceberg table
  (a scan of the key column), the floor of any comparison of key sets;
- ``audit_1m_equal_s``: the audit of equal tables (chunk digests only), and
  ``ratio_vs_key_read`` = it / the baseline (``diffs_ratio_vs_key_read`` the same for the
  next figure);
- ``audit_1m_100_diffs_s``: the audit after 100 rows spread over the table were changed in the
  Iceberg table (100 differing chunks of ``chunk_rows`` compared row by row, then re-checked
  until confirmed): it includes
  ``grace_s`` of waiting, since a difference is only confirmed once older than the grace
  (the freshness SLO; 1 s here so that the figure shows the work);
- ``pg_sink_audit_1m_equal_s`` / ``pg_sink_key_read_baseline_s``: the same against the
  PostgreSQL copy.

The run function returns a dict so other audit-area figures (heartbeats) can be merged in.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
from psycopg2.extensions import make_dsn

from datamesh import endpoints
from datamesh.audit.compare import compare
from datamesh.audit.iceberg_side import IcebergSide
from datamesh.audit.key_filter import iceberg_filter
from datamesh.audit.pg_side import PgSide
from datamesh.audit.scope import Exclusion
from datamesh.sinks.catalog import open_catalog

ROWS = 1_000_000
CHUNK_ROWS = 2_000
DIFFS = 100
GRACE_S = 1.0
COLUMNS = ["id", "title", "status", "budget", "updated_at"]
DDL = (
    "CREATE TABLE movies (id bigint PRIMARY KEY, title text NOT NULL, status text,"
    " budget numeric(12,2), updated_at timestamp NOT NULL)"
)
FILL = (
    "INSERT INTO movies SELECT g, 'movie ' || g, CASE WHEN g %% 3 = 0 THEN NULL ELSE "
    "'development' END, g::numeric(12,2), timestamp '2024-01-01' + g * interval '1 second' "
    "FROM generate_series(1, %s) g"
)
BASE_US = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC in microseconds


@contextmanager
def _databases(count: int) -> Iterator[list[str]]:
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    made = [f"bench_audit_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    try:
        with admin.cursor() as cur:
            for name in made:
                cur.execute(f'CREATE DATABASE "{name}"')
        yield [make_dsn(server, dbname=name) for name in made]
    finally:
        with admin.cursor() as cur:
            for name in made:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _fill(dsn: str, rows: int) -> None:
    db = psycopg2.connect(dsn)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute(DDL)
        cur.execute(FILL, (rows,))
        cur.execute("VACUUM ANALYZE movies")
    db.close()


def arrow_rows(rows: int) -> pa.Table:
    """The rows :data:`FILL` writes, built with pyarrow."""
    ids = pa.array(range(1, rows + 1), pa.int64())
    title = pc.binary_join_element_wise("movie ", ids.cast(pa.string()), "")
    third = pc.equal(pc.subtract(ids, pc.multiply(pc.divide(ids, 3), 3)), 0)  # integer division
    status = pc.if_else(third, pa.scalar(None, pa.string()), "development")
    budget = ids.cast(pa.decimal128(19, 0)).cast(pa.decimal128(12, 2), safe=False)
    at = pc.add(pc.multiply(ids, 1_000_000), BASE_US).cast(pa.timestamp("us"))
    return pa.table(
        {"id": ids, "title": title, "status": status, "budget": budget, "updated_at": at}
    )


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def run(rows: int = ROWS) -> dict[str, Any]:
    """``{"audit": {...}}``: see the module docstring."""
    catalog = open_catalog()
    namespace = f"bench_audit_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    ident = f"{namespace}.movies"
    figures: dict[str, Any] = {"rows": rows, "chunk_rows": CHUNK_ROWS, "grace_s": GRACE_S}
    try:
        with _databases(2) as (source_dsn, copy_dsn):
            _fill(source_dsn, rows)
            _fill(copy_dsn, rows)
            data = arrow_rows(rows)
            table = catalog.create_table(ident, schema=data.schema)
            table.append(data)

            def source() -> PgSide:
                return PgSide(source_dsn, "public", "movies", ["id"], COLUMNS, Exclusion(), "src")

            def iceberg() -> IcebergSide:
                return IcebergSide(
                    lambda: catalog.load_table(ident), ["id"], COLUMNS, Exclusion(), "sink"
                )

            def audit(sink: Any) -> Any:
                return compare(
                    source(), sink, COLUMNS, GRACE_S, chunk_rows=CHUNK_ROWS, recheck_s=0.2
                )

            baseline, _ = _timed(lambda: (source().read_keys(), iceberg().read_keys()))
            equal_s, equal = _timed(lambda: audit(iceberg()))
            assert not equal.differences and equal.rows_sink == rows, equal
            changed = list(range(rows // DIFFS // 2, rows, rows // DIFFS))[:DIFFS]
            _change(catalog.load_table(ident), changed)
            diffs_s, found = _timed(lambda: audit(iceberg()))
            assert len(found.differences) == DIFFS, len(found.differences)
            pg_baseline, _ = _timed(
                lambda: (
                    source().read_keys(),
                    PgSide(
                        copy_dsn, "public", "movies", ["id"], COLUMNS, Exclusion(), "copy"
                    ).read_keys(),
                )
            )
            copy = PgSide(copy_dsn, "public", "movies", ["id"], COLUMNS, Exclusion(), "copy")
            pg_equal_s, pg_equal = _timed(lambda: audit(copy))
            assert not pg_equal.differences, pg_equal
    finally:
        for name in catalog.list_tables(namespace):
            catalog.drop_table(name)
        catalog.drop_namespace(namespace)
    figures.update(
        {
            "key_read_baseline_s": round(baseline, 3),
            "audit_1m_equal_s": round(equal_s, 3),
            "audit_1m_100_diffs_s": round(diffs_s, 3),
            "audit_1m_100_diffs_chunks_compared": found.chunks_differing,
            "ratio_vs_key_read": round(equal_s / baseline, 3),
            "diffs_ratio_vs_key_read": round(diffs_s / baseline, 3),
            "pg_sink_key_read_baseline_s": round(pg_baseline, 3),
            "pg_sink_audit_1m_equal_s": round(pg_equal_s, 3),
            "pg_sink_ratio_vs_key_read": round(pg_equal_s / pg_baseline, 3),
        }
    )
    return {"audit": figures}


def _change(table: Any, ids: list[int]) -> None:
    """Give ``ids`` another title in the Iceberg table (delete, then append the new rows)."""
    old = table.scan(row_filter=iceberg_filter(["id"], [(i,) for i in ids])).to_arrow()
    new = old.set_column(
        old.schema.get_field_index("title"), "title", pa.array(["changed"] * len(old), pa.string())
    )
    with table.transaction() as tx:
        tx.delete(iceberg_filter(["id"], [(i,) for i in ids]))
        tx.append(new)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
