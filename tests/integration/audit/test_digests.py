"""Equal data gives equal digests on every side, across types: a PostgreSQL table, a PostgreSQL
table with the types a ``postgres_sink`` creates, and an Iceberg table written with pyarrow.
One changed value in any column makes exactly that chunk and that column differ."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import pyarrow as pa
import pytest
from psycopg2.extensions import make_dsn

from datamesh import endpoints
from datamesh.audit.compare import compare
from datamesh.audit.iceberg_side import IcebergSide
from datamesh.audit.pg_side import PgSide
from datamesh.audit.scope import Exclusion
from datamesh.sinks.catalog import open_catalog

pytestmark = pytest.mark.integration

COLUMNS = ["id", "title", "ok", "budget", "score", "ratio", "at", "day", "tm", "blob"]
SOURCE_DDL = (
    "CREATE TABLE t (id bigint PRIMARY KEY, title text, ok boolean, budget numeric(12,2),"
    " score real, ratio double precision, at timestamp, day date, tm time, blob bytea)"
)
# what a postgres_sink creates for the same Avro row (numeric without scale, integer key)
SINK_DDL = (
    "CREATE TABLE t (id integer PRIMARY KEY, title varchar(200), ok boolean, budget numeric,"
    " score real, ratio double precision, at timestamp, day date, tm time, blob bytea)"
)
ROWS: list[tuple[Any, ...]] = [
    (
        1,
        "plain",
        True,
        Decimal("1000.50"),
        1.5,
        0.1,
        dt.datetime(2024, 1, 2, 3, 4, 5, 6000),
        dt.date(2024, 1, 2),
        dt.time(10, 11, 12, 131000),
        b"\x00\xff",
    ),
    (
        2,
        "tab\tnew\nline \\N back\\slash",
        False,
        Decimal("0.00"),
        -0.25,
        1e-7,
        dt.datetime(1969, 12, 31, 23, 59, 59),
        dt.date(1960, 5, 6),
        dt.time(0, 0),
        b"",
    ),
    (3, None, None, None, None, None, None, None, None, None),
    (
        4,
        "",
        True,
        Decimal("-12.30"),
        3.4028234e38,
        -1234567890123456.0,  # PostgreSQL prints -1.234567890123456e+15
        dt.datetime(2030, 6, 1),
        dt.date(2030, 6, 1),
        dt.time(23, 59, 59),
        b"abc",
    ),
    *[
        (
            i,
            f"row {i}",
            i % 2 == 0,
            Decimal(i) / 4,
            float(i),
            i / 3,
            dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i),
            dt.date(2024, 1, 1),
            dt.time(1, 2, 3),
            bytes([i % 256]),
        )
        for i in range(5, 400)
    ],
]
ARROW = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("ok", pa.bool_()),
        ("budget", pa.decimal128(12, 2)),
        ("score", pa.float32()),
        ("ratio", pa.float64()),
        ("at", pa.timestamp("us")),
        ("day", pa.date32()),
        ("tm", pa.time64("us")),
        ("blob", pa.binary()),
    ]
)


@pytest.fixture
def databases(mesh_stack: object) -> Iterator[tuple[str, str]]:
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    made = [f"audit_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with admin.cursor() as cur:
        for name in made:
            cur.execute(f'CREATE DATABASE "{name}"')
    yield make_dsn(server, dbname=made[0]), make_dsn(server, dbname=made[1])
    with admin.cursor() as cur:
        for name in made:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _fill(dsn: str, ddl: str) -> psycopg2.extensions.connection:
    db = psycopg2.connect(dsn)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute(ddl)
        cur.executemany(f"INSERT INTO t VALUES ({', '.join(['%s'] * len(COLUMNS))})", ROWS)
    return db


def _iceberg(name: str) -> Any:
    catalog = open_catalog()
    catalog.create_namespace_if_not_exists("audit_test")
    table = catalog.create_table(f"audit_test.{name}", schema=ARROW)
    columns = list(zip(*ROWS, strict=True))
    table.append(
        pa.table([pa.array(c, t.type) for c, t in zip(columns, ARROW, strict=True)], schema=ARROW)
    )
    return lambda: catalog.load_table(f"audit_test.{name}")


def _pg(dsn: str, label: str) -> PgSide:
    return PgSide(dsn, "public", "t", ["id"], COLUMNS, Exclusion(), label)


def _digests(side: Any, bounds: list[tuple[object, ...]]) -> list[Any]:
    return list(side.digests(bounds, lambda *_: None))


def test_equal_rows_give_equal_digests_across_types(databases: tuple[str, str]) -> None:
    src_dsn, sink_dsn = databases
    _fill(src_dsn, SOURCE_DDL)
    _fill(sink_dsn, SINK_DDL)
    source, sink = _pg(src_dsn, "source"), _pg(sink_dsn, "sink")
    ice = IcebergSide(_iceberg(f"t{uuid.uuid4().hex[:8]}"), ["id"], COLUMNS, Exclusion(), "ice")
    bounds = source.boundaries(50)
    assert len(bounds) == 7  # 399 rows in chunks of 50
    assert ice.boundaries(50) == bounds
    expected = _digests(source, bounds)
    assert sum(d.count for d in expected) == len(ROWS)
    assert _digests(sink, bounds) == expected
    assert _digests(ice, bounds) == expected
    # row texts too, not only the digests
    assert ice.chunk_rows(bounds, 0) == source.chunk_rows(bounds, 0)
    assert sink.rows_for([(2,), (3,)]) == source.rows_for([(2,), (3,)])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("title", "plain "),
        ("ok", False),
        ("budget", Decimal("1000.51")),
        ("score", 1.25),
        ("ratio", 0.1000001),
        ("at", dt.datetime(2024, 1, 2, 3, 4, 5, 6001)),
        ("day", dt.date(2024, 1, 3)),
        ("tm", dt.time(10, 11, 12)),
        ("blob", b"\x00"),
        ("title", None),
    ],
)
def test_one_changed_value_names_its_chunk_and_column(
    databases: tuple[str, str], column: str, value: Any
) -> None:
    src_dsn, sink_dsn = databases
    _fill(src_dsn, SOURCE_DDL)
    db = _fill(sink_dsn, SINK_DDL)
    with db.cursor() as cur:
        cur.execute(f"UPDATE t SET {column} = %s WHERE id = 1", (value,))
    result = compare(
        _pg(src_dsn, "source"),
        _pg(sink_dsn, "sink"),
        COLUMNS,
        grace_s=0.5,
        chunk_rows=50,
        recheck_s=0.1,
    )
    assert result.chunks_differing == 1
    [difference] = result.differences
    assert (difference.key, difference.kind, difference.columns) == (("1",), "differs", (column,))


def test_text_and_composite_keys_chunk_alike_on_both_sides(databases: tuple[str, str]) -> None:
    """A key of text and integer: chunks by key range (``COLLATE "C"`` order, one query per
    chunk) on PostgreSQL, by the same order in pyarrow; one changed row is found."""
    src_dsn, _ = databases
    db = psycopg2.connect(src_dsn)
    db.autocommit = True
    rows = [
        (f"{chr(65 + i % 26)}{'é' if i % 7 == 0 else ''}-{i % 5}", i % 3, f"v{i}")
        for i in range(300)
    ]
    rows = list({(a, b): (a, b, c) for a, b, c in rows}.values())
    with db.cursor() as cur:
        cur.execute("CREATE TABLE p (code text, n int, v text, PRIMARY KEY (code, n))")
        cur.executemany("INSERT INTO p VALUES (%s, %s, %s)", rows)
    catalog = open_catalog()
    catalog.create_namespace_if_not_exists("audit_test")
    name = f"audit_test.p{uuid.uuid4().hex[:8]}"
    schema = pa.schema([("code", pa.string()), ("n", pa.int32()), ("v", pa.string())])
    table = catalog.create_table(name, schema=schema)
    changed = [(a, b, "other" if (a, b) == rows[10][:2] else c) for a, b, c in rows]
    table.append(pa.table([pa.array(col) for col in zip(*changed, strict=True)], schema=schema))
    source = PgSide(src_dsn, "public", "p", ["code", "n"], ["code", "n", "v"], Exclusion(), "s")
    sink = IcebergSide(
        lambda: catalog.load_table(name), ["code", "n"], ["code", "n", "v"], Exclusion(), "k"
    )
    assert source.bucket_type is None  # the per-chunk path
    bounds = source.boundaries(7)
    assert sink.boundaries(7) == bounds
    result = compare(source, sink, ["code", "n", "v"], grace_s=0.3, chunk_rows=7, recheck_s=0.1)
    assert result.chunks_differing == 1
    [difference] = result.differences
    assert difference.raw == rows[10][:2] and difference.columns == ("v",)
