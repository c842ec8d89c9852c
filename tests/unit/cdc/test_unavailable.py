"""REPLICA IDENTITY DEFAULT events (pure): Debezium's placeholder per type, key-only images,
and which identities the connector follows."""

from __future__ import annotations

import io
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from datamesh.cdc.codec import TableCodec, TxParts, source_head
from datamesh.cdc.errors import UnsupportedValue
from datamesh.cdc.identity import identity_refusal
from datamesh.cdc.pgoutput import UNCHANGED, Column
from datamesh.cdc.pgtypes import avro_column_type
from datamesh.cdc.schemas import TableShape, envelope_schema
from datamesh.cdc.unavailable import UNAVAILABLE_BYTES, UNAVAILABLE_VALUE, unavailable_present

NUM_6_2 = (6 << 16 | 2) + 4
NUM_10_2 = (10 << 16 | 2) + 4
PER_BYTE = list(UNAVAILABLE_BYTES)  # [95, 95, 100, ...]: Debezium's numeric array placeholder
# java.util.UUID.nameUUIDFromBytes("__debezium_unavailable_value".getBytes()), run in jshell
JAVA_UUID = uuid.UUID("b68a35a7-17ad-35b3-af2a-ae46edb4545a")

PLACEHOLDERS: list[tuple[str, int, int, Any]] = [
    ("text", 25, -1, UNAVAILABLE_VALUE),
    ("varchar", 1043, 14, UNAVAILABLE_VALUE),
    ("jsonb", 3802, -1, UNAVAILABLE_VALUE),
    ("numeric free", 1700, -1, UNAVAILABLE_VALUE),
    ("xml as text", 142, -1, UNAVAILABLE_VALUE),
    ("bytea", 17, -1, UNAVAILABLE_BYTES),
    ("text[]", 1009, -1, [UNAVAILABLE_VALUE]),
    ("uuid[]", 2951, -1, [JAVA_UUID]),
    ("bytea[]", 1001, -1, [UNAVAILABLE_BYTES]),
    ("int4[]", 1007, -1, PER_BYTE),
    ("int8[]", 1016, -1, PER_BYTE),
    ("float8[]", 1022, -1, [float(b) for b in PER_BYTE]),
    ("bool[]", 1000, -1, [True] * len(PER_BYTE)),
    ("numeric(6,2)[]", 1231, NUM_6_2, [Decimal(b).scaleb(-2) for b in PER_BYTE]),
    ("date[]", 1182, -1, [date.fromordinal(date(1970, 1, 1).toordinal() + b) for b in PER_BYTE]),
]


@pytest.mark.parametrize(
    ("type_oid", "typmod", "expected"),
    [case[1:] for case in PLACEHOLDERS],
    ids=[case[0] for case in PLACEHOLDERS],
)
def test_placeholder_is_debeziums_in_the_columns_type(
    type_oid: int, typmod: int, expected: Any
) -> None:
    avro = avro_column_type(type_oid, typmod).avro
    encoded = unavailable_present(avro)
    assert encoded is not None
    schema = fastavro.parse_schema(["null", avro])
    assert fastavro.schemaless_reader(io.BytesIO(encoded), schema, None) == expected
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, expected)
    assert out.getvalue() == encoded  # canonical: what AvroSerializer would write


@pytest.mark.parametrize(
    ("type_oid", "typmod"),
    [(23, -1), (20, -1), (1700, NUM_10_2), (1184, -1), (1082, -1), (2950, -1), (16, -1)],
)
def test_types_never_toasted_have_no_placeholder(type_oid: int, typmod: int) -> None:
    assert unavailable_present(avro_column_type(type_oid, typmod).avro) is None


SHAPE = TableShape(
    "public",
    "docs",
    (
        Column(True, "id", 23, -1),
        Column(False, "title", 25, -1),
        Column(False, "body", 25, -1),
        Column(False, "blob", 17, -1),
        Column(False, "price", 1700, NUM_10_2),
    ),
    ("id",),
)
TX = TxParts.of(1_700_000_000_000, "false", 9, 5)


def _codec() -> TableCodec:
    return TableCodec(SHAPE, "studio", key_id=1, value_id=2, head=source_head("studio-cdc"))


def _decode(value: bytes) -> dict[str, Any]:
    schema = fastavro.parse_schema(envelope_schema("studio.public.docs", SHAPE))
    event = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)
    assert isinstance(event, dict)
    return event


def test_default_identity_update_marks_unchanged_toast_unavailable() -> None:
    codec = _codec()
    new = (b"1", b"renamed", UNCHANGED, UNCHANGED, b"2.50")
    key, after = codec.keyed_unavailable(new)
    assert key == codec.key(new)
    event = _decode(codec.event(None, after, b"\x02u", TX, 7))
    assert event["before"] is None  # Debezium: no old tuple, no before
    assert event["after"] == {
        "id": 1,
        "title": "renamed",
        "body": UNAVAILABLE_VALUE,
        "blob": UNAVAILABLE_BYTES,
        "price": Decimal("2.50"),
    }
    assert codec.keyed_unavailable((b"1", b"a", None, None, None)) == codec.keyed(
        (b"1", b"a", None, None, None)
    )


def test_key_only_image_is_the_before_of_a_delete() -> None:
    codec = _codec()
    _key, before = codec.keyed((b"1", None, None, None, None))  # pgoutput's 'K' tuple
    event = _decode(codec.event(before, None, b"\x02d", TX, 7))
    assert event["before"] == {"id": 1, "title": None, "body": None, "blob": None, "price": None}
    assert event["after"] is None and event["op"] == "d"


def test_unchanged_value_of_a_type_without_placeholder_names_the_fix() -> None:
    with pytest.raises(UnsupportedValue, match="REPLICA IDENTITY FULL") as info:
        _codec().keyed_unavailable((b"1", b"a", None, None, UNCHANGED))
    assert info.value.column == "public.docs.price"


@pytest.mark.parametrize(
    ("identity", "key", "logged", "refused"),
    [
        ("f", ("id",), ("id", "a"), None),
        ("f", (), (), None),
        ("d", ("id",), ("id",), None),
        ("i", ("id",), ("id", "a"), None),
        ("d", (), (), "no primary key"),
        ("i", ("id", "b"), ("id", "a"), "do not include the primary key"),
        ("n", ("id",), (), "NOTHING"),
    ],
)
def test_identities_the_connector_follows(
    identity: str, key: tuple[str, ...], logged: tuple[str, ...], refused: str | None
) -> None:
    error = identity_refusal("public.docs", identity, key, logged)
    if refused is None:
        assert error is None
        return
    assert error is not None and refused in str(error)
    assert "table public.docs has REPLICA IDENTITY" in str(error)
    assert error.fix is not None and "ALTER TABLE public.docs REPLICA IDENTITY FULL" in error.fix
