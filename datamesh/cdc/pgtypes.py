"""PostgreSQL column types (OID + typmod from the Relation message) -> Avro type + encoder.

Each encoder turns one non-NULL text value into Avro binary for the non-null branch of the
column's type. Mapping (Debezium's defaults where they exist):

=========================================  ================================================
PostgreSQL                                 Avro
=========================================  ================================================
smallint, integer                          int
bigint, oid                                long
numeric(p,s)                               bytes decimal(p,s) (negative s: decimal(p-s,0))
numeric without (p,s)                      string (no fixed scale to encode with)
real / double precision                    float / double
text, varchar, char(n), name, "char"       string
boolean                                    boolean
date                                       int date (±infinity -> int32 max/min)
timestamp, timestamptz                     long timestamp-micros, UTC (±infinity -> max/min)
time                                       long time-micros
uuid                                       string uuid
json, jsonb                                string
bytea                                      bytes
one-dimensional arrays of the above        array of nullable items
anything else (interval, inet, enums...)   string: PostgreSQL's own text form
=========================================  ================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from datamesh.cdc import pgtext
from datamesh.cdc.avro_binary import (
    FALSE,
    NULL_BRANCH,
    TRUE,
    VALUE_BRANCH,
    array_bytes,
    bytes_bytes,
    decimal_bytes,
    double_bytes,
    float_bytes,
    long_bytes,
    long_text_bytes,
    present_bytes,
    present_decimal,
    present_long_text,
)

Encoder = Callable[[bytes], bytes]


class NotRepresentable(ValueError):
    """A value the Avro type cannot hold (numeric NaN/Infinity): written as null if allowed."""


class AvroColumnType(NamedTuple):
    """The (non-null) Avro type of a column and the encoders of its text values.

    ``encode`` writes the value alone (key fields); ``present`` writes it as the non-null
    branch of an optional field (``["null", T]``: branch byte 2, then the value).
    """

    avro: Any
    encode: Encoder
    present: Encoder


def column_type(
    avro: Any, encode: Encoder, present: Encoder | None = None, memo: bool = False
) -> AvroColumnType:
    """Build a type; ``memo`` caches the present form of values (costly parses only)."""
    if present is None:

        def present(raw: bytes) -> bytes:
            return VALUE_BRANCH + encode(raw)

    return AvroColumnType(avro, encode, _memo(present) if memo else present)


def _memo(encode: Encoder, size: int = 4096) -> Encoder:
    """``encode`` with a small cache: CDC values repeat (a batch's ``now()``, a price), and
    parsing dates, timestamps and decimals costs ten times a dictionary lookup."""
    cache: dict[bytes, bytes] = {}

    def cached(raw: bytes) -> bytes:
        out = cache.get(raw)
        if out is None:
            if len(cache) >= size:
                cache.clear()
            out = cache[raw] = encode(raw)
        return out

    return cached


def _bool(raw: bytes) -> bytes:
    return TRUE if raw == b"t" else FALSE


def _real(raw: bytes) -> bytes:
    return float_bytes(float(raw))


def _double(raw: bytes) -> bytes:
    return double_bytes(float(raw))


def _date(raw: bytes) -> bytes:
    return long_bytes(pgtext.date_days(raw))


def _timestamp(raw: bytes) -> bytes:
    return long_bytes(pgtext.timestamp_micros(raw))


def _time(raw: bytes) -> bytes:
    return long_bytes(pgtext.time_micros(raw))


def _bytea(raw: bytes) -> bytes:
    return bytes_bytes(pgtext.bytea_bytes(raw))


def _decimal(scale: int, present: bool) -> Encoder:
    """Encoder of ``numeric(p, scale)`` text, plain or as the present branch of an option."""
    write = present_decimal if present else decimal_bytes

    def encode(raw: bytes) -> bytes:
        unscaled = pgtext.unscaled_decimal(raw, scale)
        if unscaled is None:
            raise NotRepresentable(f"{raw.decode()} has no decimal representation")
        return write(unscaled)

    return encode


STRING = column_type("string", bytes_bytes, present_bytes)
_INT = column_type("int", long_text_bytes, present_long_text)
_LONG = column_type("long", long_text_bytes, present_long_text)
_TIMESTAMP = column_type({"type": "long", "logicalType": "timestamp-micros"}, _timestamp, memo=True)
_SCALARS: dict[int, AvroColumnType] = {
    21: _INT,  # int2
    23: _INT,  # int4
    20: _LONG,  # int8
    26: _LONG,  # oid
    700: column_type("float", _real),  # float4
    701: column_type("double", _double),  # float8
    16: column_type("boolean", _bool),
    1082: column_type({"type": "int", "logicalType": "date"}, _date, memo=True),
    1114: _TIMESTAMP,
    1184: _TIMESTAMP,
    1083: column_type({"type": "long", "logicalType": "time-micros"}, _time, memo=True),
    2950: column_type({"type": "string", "logicalType": "uuid"}, bytes_bytes, present_bytes),
    17: column_type("bytes", _bytea),
    # text, varchar, bpchar, name, "char", json, jsonb: the text is already UTF-8 Avro string
    25: STRING,
    1043: STRING,
    1042: STRING,
    19: STRING,
    18: STRING,
    114: STRING,
    3802: STRING,
}
NUMERIC = 1700
# array type OID -> element type OID (pg_type.typelem of the built-in array types)
ARRAY_ELEMENTS: dict[int, int] = {
    1000: 16,
    1001: 17,
    1002: 18,
    1003: 19,
    1005: 21,
    1007: 23,
    1009: 25,
    1014: 1042,
    1015: 1043,
    1016: 20,
    1021: 700,
    1022: 701,
    1028: 26,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    1231: 1700,
    2951: 2950,
    199: 114,
    3807: 3802,
}


def numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    """(precision, scale) of ``numeric(p,s)`` from its typmod; None when unconstrained.

    PostgreSQL 15 packs ``((p << 16) | (s & 0x7ff)) + 4`` with an 11-bit signed scale.
    """
    if typmod < 4:
        return None
    packed = typmod - 4
    scale = packed & 0x7FF
    return (packed >> 16) & 0xFFFF, scale - 0x800 if scale & 0x400 else scale


def _numeric(typmod: int) -> AvroColumnType:
    ps = numeric_precision_scale(typmod)
    if ps is None:
        return STRING
    precision, scale = ps
    if scale < 0:  # a multiple of 10^-s: an integer with up to p - s digits
        precision, scale = precision - scale, 0
    precision = max(precision, scale)  # PostgreSQL 15 allows s > p (0.00123 in numeric(3,5))
    avro = {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    return column_type(avro, _decimal(scale, False), _decimal(scale, True), memo=True)


def _array(element: AvroColumnType) -> AvroColumnType:
    present_item = element.present

    def item(value: bytes | None) -> bytes:
        if value is None:
            return NULL_BRANCH
        try:
            return present_item(value)
        except NotRepresentable:  # a NaN inside numeric[]: the item is nullable
            return NULL_BRANCH

    def encode(raw: bytes) -> bytes:
        return array_bytes([item(v) for v in pgtext.array_items(raw)])

    return column_type({"type": "array", "items": ["null", element.avro]}, encode)


def avro_column_type(type_oid: int, typmod: int) -> AvroColumnType:
    """The Avro type and encoder of a column (unknown types fall back to their text)."""
    if type_oid == NUMERIC:
        return _numeric(typmod)
    element = ARRAY_ELEMENTS.get(type_oid)
    if element is not None:
        return _array(avro_column_type(element, typmod))
    return _SCALARS.get(type_oid, STRING)
