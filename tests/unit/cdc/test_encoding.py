"""Text -> Avro encoders against fastavro (what ``AvroSerializer`` uses): pure, no services.

Each case encodes PostgreSQL's text output with the connector's encoder, checks fastavro reads
back the expected value, and that fastavro writing that value yields the very same bytes.
"""

from __future__ import annotations

import io
import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from datamesh.cdc import pgtext
from datamesh.cdc.codec import TableCodec, TxParts, source_head
from datamesh.cdc.dblog import Chunk, Window
from datamesh.cdc.errors import UnsupportedValue
from datamesh.cdc.pgoutput import UNCHANGED, Column
from datamesh.cdc.pgtypes import avro_column_type, numeric_precision_scale
from datamesh.cdc.schemas import TableShape, envelope_schema

NUM_10_2 = (10 << 16 | 2) + 4
NUM_6_2 = (6 << 16 | 2) + 4
NUM_5_NEG2 = (5 << 16 | (-2 & 0x7FF)) + 4
U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")

CASES: list[tuple[str, int, int, bytes, Any]] = [
    ("int2", 21, -1, b"-5", -5),
    ("int4 min", 23, -1, b"-2147483648", -(2**31)),
    ("int8 max", 20, -1, b"9223372036854775807", 2**63 - 1),
    ("float4", 700, -1, b"1.5", 1.5),
    ("float8", 701, -1, b"0.1", 0.1),
    ("float8 -inf", 701, -1, b"-Infinity", -math.inf),
    ("numeric(10,2)", 1700, NUM_10_2, b"-123.45", Decimal("-123.45")),
    ("numeric(10,2) zero", 1700, NUM_10_2, b"0.00", Decimal("0.00")),
    ("numeric(10,2) -128", 1700, NUM_10_2, b"-1.28", Decimal("-1.28")),
    ("numeric(5,-2)", 1700, NUM_5_NEG2, b"12300", Decimal("12300")),
    ("numeric free", 1700, -1, b"3.14159265358979", "3.14159265358979"),
    ("text", 25, -1, "café ☕".encode(), "café ☕"),
    ("char(5)", 1042, 9, b"ab   ", "ab   "),
    ("varchar", 1043, 14, b"", ""),
    ("bool", 16, -1, b"t", True),
    ("date", 1082, -1, b"2024-02-29", date(2024, 2, 29)),
    (
        "timestamp",
        1114,
        -1,
        b"2024-01-02 03:04:05.123456",
        datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    ),
    (
        "timestamptz",
        1184,
        -1,
        b"2024-01-02 03:04:05.5+05:30",
        datetime(2024, 1, 1, 21, 34, 5, 500000, tzinfo=UTC),
    ),
    ("time", 1083, -1, b"23:59:59.999999", time(23, 59, 59, 999999)),
    ("uuid", 2950, -1, str(U).encode(), U),
    ("jsonb", 3802, -1, b'{"a": [1, 2]}', '{"a": [1, 2]}'),
    ("bytea", 17, -1, b"\\x00ff10", b"\x00\xff\x10"),
    ("int4[]", 1007, -1, b"{1,NULL,3}", [1, None, 3]),
    (
        "text[]",
        1009,
        -1,
        b'{"a b",NULL,"NULL","x\\"y",plain}',
        ["a b", None, "NULL", 'x"y', "plain"],
    ),
    ("numeric(6,2)[]", 1231, NUM_6_2, b"{1.50,NaN}", [Decimal("1.50"), None]),
    ("timestamptz[]", 1185, -1, b'{"2024-01-01 00:00:00+00"}', [datetime(2024, 1, 1, tzinfo=UTC)]),
    ("bytea[]", 1001, -1, b'{"\\\\x0102"}', [b"\x01\x02"]),
    ("empty int8[]", 1016, -1, b"{}", []),
    ("interval falls back to text", 1186, -1, b"1 day 02:00:00", "1 day 02:00:00"),
]


def _schema(type_oid: int, typmod: int) -> Any:
    avro = avro_column_type(type_oid, typmod).avro
    record = {"type": "record", "name": "R", "fields": [{"name": "v", "type": ["null", avro]}]}
    return fastavro.parse_schema(record)


@pytest.mark.parametrize(
    ("label", "oid", "typmod", "text", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_encoder_matches_fastavro(
    label: str, oid: int, typmod: int, text: bytes, expected: Any
) -> None:
    schema = _schema(oid, typmod)
    column = avro_column_type(oid, typmod)
    ours = b"\x02" + column.encode(text)
    assert column.present(text) == ours  # the optional-field form used in Value records
    decoded = fastavro.schemaless_reader(io.BytesIO(ours), schema, None)
    assert isinstance(decoded, dict)
    assert decoded["v"] == expected
    theirs = io.BytesIO()
    fastavro.schemaless_writer(theirs, schema, {"v": expected})
    assert ours == theirs.getvalue()


def test_special_values_of_dates_and_timestamps() -> None:
    assert pgtext.date_days(b"1970-01-01") == 0
    assert pgtext.date_days(b"0001-12-31 BC") == pgtext.civil_days(0, 12, 31)
    assert pgtext.date_days(b"infinity") == 2**31 - 1
    assert pgtext.date_days(b"12345-01-01") == pgtext.civil_days(12345, 1, 1)
    assert pgtext.timestamp_micros(b"-infinity") == -(2**63)
    assert (
        pgtext.timestamp_micros(b"0044-03-15 12:00:00+00 BC")
        == (pgtext.civil_days(-43, 3, 15) * 86_400 + 12 * 3600) * 1_000_000
    )
    assert pgtext.time_micros(b"24:00:00") == 86_400_000_000


def test_numeric_typmod_decoding() -> None:
    assert numeric_precision_scale(NUM_10_2) == (10, 2)
    assert numeric_precision_scale(NUM_5_NEG2) == (5, -2)
    assert numeric_precision_scale(-1) is None


SHAPE = TableShape(
    "public",
    "movies",
    (
        Column(True, "id", 23, -1),
        Column(False, "title", 25, -1),
        Column(False, "n", 1700, NUM_10_2),
        Column(False, "tags", 1007, -1),
    ),
    ("id",),
)


def _codec() -> TableCodec:
    return TableCodec(SHAPE, "studio", key_id=7, value_id=8, head=source_head("studio-studio-cdc"))


def test_envelope_decodes_as_debezium_event() -> None:
    codec = _codec()
    before = (b"1", b"old", b"NaN", b"{1,2}")
    after = (b"1", b"new", b"2.50", None)
    tx = TxParts.of(1_700_000_000_000, "false", 742, 5)
    old_key, old_image, new_key, new_image = codec.keyed_pair(before, after)
    assert (old_image, new_image) == (codec.image(before), codec.image(after))
    assert old_key == new_key == codec.key(after)
    value = codec.event(old_image, new_image, b"\x02u", tx, 99)
    assert value[:5] == b"\x00\x00\x00\x00\x08" and codec.key(after)[:5] == b"\x00\x00\x00\x00\x07"
    schema = fastavro.parse_schema(envelope_schema("studio.public.movies", SHAPE))
    event = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)
    assert event == {
        "before": {"id": 1, "title": "old", "n": None, "tags": [1, 2]},  # NaN has no decimal
        "after": {"id": 1, "title": "new", "n": Decimal("2.50"), "tags": None},
        "source": {
            "version": "1.0.0-mesh",
            "connector": "postgresql",
            "name": "studio-studio-cdc",
            "ts_ms": 1_700_000_000_000,
            "snapshot": "false",
            "db": "studio",
            "schema": "public",
            "table": "movies",
            "txId": 742,
            "lsn": 99,
        },
        "op": "u",
        "ts_ms": 5,
    }


def test_bad_values_name_table_column_and_fix() -> None:
    codec = _codec()
    with pytest.raises(UnsupportedValue, match=r"public\.movies\.tags.*multidimensional"):
        codec.image((b"1", b"t", None, b"{{1,2},{3,4}}"))
    with pytest.raises(UnsupportedValue, match="REPLICA IDENTITY FULL") as info:
        codec.image((b"1", b"t", UNCHANGED, None))  # numeric(10,2) is never TOASTed
    assert info.value.column == "public.movies.n"
    with pytest.raises(UnsupportedValue, match=r"public\.movies\.id"):
        codec.key((b"x1", None, None, None))


def _chunk(rows: dict[tuple[object, ...], tuple[bytes, ...]]) -> Chunk:
    return Chunk("public.movies", "low:1", "high:1", SHAPE, dict(rows), ("3",), final=False)


def test_window_drops_rows_changed_between_watermarks() -> None:
    window = Window()
    window.begin(_chunk({(b"1",): (b"1",), (b"2",): (b"2",), (b"3",): (b"3",)}))
    window.on_change("public.movies", (b"1",))  # before the low watermark: kept
    assert window.on_watermark("low:1") is None
    window.on_change("public.movies", (b"2",))
    window.on_change("public.other", (b"3",))
    chunk = window.on_watermark("high:1")
    assert chunk is not None and list(chunk.rows) == [(b"1",), (b"3",)] and chunk.selected == 3
    assert window.chunk is None


def test_window_truncate_and_missing_low_watermark() -> None:
    window = Window()
    window.begin(_chunk({(b"1",): (b"1",)}))
    window.on_watermark("low:1")
    window.on_truncate("public.movies")
    chunk = window.on_watermark("high:1")
    assert chunk is not None and chunk.rows == {}
    window.begin(_chunk({(b"1",): (b"1",)}))
    assert window.on_watermark("high:1") is None  # low never seen: selected again later


def test_update_pair_fills_unchanged_toast_and_detects_key_changes() -> None:
    codec = _codec()
    old = (b"1", b"a long text kept in TOAST", b"2.50", b"{1}")
    old_key, before, new_key, after = codec.keyed_pair(old, (b"1", UNCHANGED, b"3.00", b"{1}"))
    assert before == codec.image(old)
    assert after == codec.image((b"1", b"a long text kept in TOAST", b"3.00", b"{1}"))
    assert old_key == new_key == codec.key(old)
    moved = codec.keyed_pair(old, (b"2", b"x", None, None))
    assert moved[0] == codec.key(old) and moved[2] == codec.key((b"2", b"x", None, None))
    with pytest.raises(UnsupportedValue, match=r"public\.movies\.n"):
        codec.keyed_pair(old, (b"1", b"x", b"not a number", None))
