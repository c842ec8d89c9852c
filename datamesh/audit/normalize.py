"""One canonical text per value, computed the same way in PostgreSQL (SQL) and in pyarrow.

A row's text is its canonical values joined by a tab and ended by a newline; a chunk's digest
is the MD5 of its rows' texts in key order. PostgreSQL computes it with
``md5(string_agg(<row text>, '' ORDER BY <key>))`` next to the data; an Iceberg table's chunk is
hashed from the contiguous buffer of a pyarrow string array holding the same row texts, so
equal rows give equal digests whatever side they are on.

Canonical values by kind (what a source column, a PostgreSQL sink column and an Iceberg column
of the same field have in common):

- ``int``: decimal digits; ``decimal``: digits without trailing fractional zeros (``1.50`` and
  ``1.5`` are one value: a numeric(12,2) and an Avro decimal's scale agree on the value, not on
  the text); ``float``: the value as PostgreSQL's ``float8`` prints it (shortest round trip);
- ``bool``: ``true`` / ``false``;
- ``timestamp``: microseconds since the epoch (a ``timestamp`` as if UTC, a ``timestamptz``
  absolute), ``date``: days since the epoch, ``time``: microseconds since midnight;
- ``text`` (and anything else PostgreSQL prints as text): the text with ``\\``, tab and newline
  escaped; ``bytes``: lowercase hex;
- NULL: ``\\N`` (unambiguous: a text's own backslash is escaped).

Keys sort by value on both sides; text keys in byte order (``COLLATE "C"`` in PostgreSQL, the
order pyarrow sorts strings in).
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["int", "decimal", "float", "bool", "timestamp", "date", "time", "text", "bytes"]
NULL = "\\N"
_PG_KINDS: tuple[tuple[tuple[str, ...], Kind], ...] = (
    (("smallint", "integer", "bigint"), "int"),
    (("numeric",), "decimal"),
    (("real", "double precision"), "float"),
    (("boolean",), "bool"),
    (("timestamp",), "timestamp"),
    (("date",), "date"),
    (("time",), "time"),
    (("bytea",), "bytes"),
)


def pg_kind(format_type: str) -> Kind:
    """The kind of a PostgreSQL column from ``format_type()`` (``numeric(12,2)``,
    ``timestamp without time zone``); anything unknown is text."""
    for prefixes, kind in _PG_KINDS:
        if any(format_type == p or format_type.startswith(p + "(") for p in prefixes):
            return kind
        if kind in ("timestamp", "time") and format_type.startswith(prefixes[0] + " "):
            return kind
    if format_type.startswith("timestamp"):
        return "timestamp"
    return "text"


def arrow_kind(t: pa.DataType) -> Kind:
    """The kind of a pyarrow column type (as pyiceberg scans an Iceberg column)."""
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    return "text"


def pg_text(column: str, kind: Kind) -> str:
    """SQL: the canonical text of ``column`` (an already quoted identifier), ``\\N`` for NULL."""
    value = {
        "int": f"{column}::text",
        "decimal": f"trim_scale({column})::text",
        "float": f"{column}::float8::text",
        "bool": f"{column}::text",
        "timestamp": f"(extract(epoch from {column}) * 1000000)::bigint::text",
        "date": f"({column} - DATE '1970-01-01')::text",
        "time": f"(extract(epoch from {column}) * 1000000)::bigint::text",
        "bytes": f"encode({column}, 'hex')",
        "text": (
            f"replace(replace(replace({column}::text, '\\', '\\\\'), E'\\t', '\\t'), E'\\n', '\\n')"
        ),
    }[kind]
    return f"coalesce({value}, '{NULL}')"


def pg_row_text(texts: list[str]) -> str:
    """SQL: the row text of canonical column texts (tab-separated, newline-terminated)."""
    return "concat_ws(E'\\t', " + ", ".join(texts) + ") || E'\\n'"


def arrow_text(values: pa.Array | pa.ChunkedArray, kind: Kind) -> pa.Array:
    """The canonical texts of a pyarrow column (one string per value, ``\\N`` for null)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    text = _arrow_value_text(array, kind)
    return pc.fill_null(text, NULL)


def _arrow_value_text(array: pa.Array, kind: Kind) -> pa.Array:
    t = array.type
    if kind == "timestamp":
        return array.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64()).cast(pa.string())
    if kind == "time":
        return array.cast(pa.time64("us")).cast(pa.int64()).cast(pa.string())
    if kind == "date":
        return array.cast(pa.date32()).cast(pa.int32()).cast(pa.string())
    if kind == "decimal":
        text = array.cast(pa.string())
        if t.scale <= 0:
            return text
        # with a positive scale every text has a '.', so trailing zeros are fractional ones
        return pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
    if kind == "float":
        return pa.array(
            [None if v is None else _pg_float(v) for v in array.to_pylist()], pa.string()
        )
    if kind == "bytes":
        return pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
    if kind in ("int", "bool"):
        return array.cast(pa.string())
    text = array.cast(pa.string())
    if not pc.any(pc.match_substring_regex(text, r"[\\\t\n]")).as_py():
        return text  # one pass to find that nothing needs escaping (the usual case)
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n")):
        text = pc.replace_substring(text, raw, escaped)
    return text


def _pg_float(value: float) -> str:
    """A float as PostgreSQL's ``float8::text`` prints it (shortest round trip)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(float(value))
    if 1e15 <= abs(value) < 1e16:  # PostgreSQL writes an exponent from 1e15, Python from 1e16
        digits = text.split(".")[0].lstrip("-").rstrip("0")
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if value < 0 else ''}{mantissa}e+15"
    mantissa, _, exponent = text.partition("e")
    if exponent:  # Python 1e+20 / 1e-05; PostgreSQL 1e+20 / 1e-05
        return f"{mantissa.removesuffix('.0')}e{exponent[0]}{exponent[1:].zfill(2)}"
    return text.removesuffix(".0")


def arrow_row_text(columns: list[pa.Array]) -> pa.Array:
    """The row texts of canonical column texts (tab-separated, newline-terminated)."""
    joined = pc.binary_join_element_wise(*columns, "\t") if len(columns) > 1 else columns[0]
    return pc.binary_join_element_wise(joined, "", "\n")
