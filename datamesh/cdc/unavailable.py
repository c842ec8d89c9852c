"""The marker of an unchanged TOASTed value the log does not carry, written like Debezium's.

With REPLICA IDENTITY DEFAULT (or USING INDEX), pgoutput sends an UPDATE's new tuple with ``u``
for every TOASTed value (a large text, bytea, json or array, stored out of line) that the
statement left unchanged, and there is no full old image to copy it from. Debezium writes
:data:`UNAVAILABLE_VALUE` in its place (its ``unavailable.value.placeholder`` default); so does
this connector, in the column's own Avro type, as Debezium 3.x's ``UnchangedToastedPlaceholder``
and ``PostgresValueConverter`` build it:

=============================  ==================================================
column (Avro)                  placeholder
=============================  ==================================================
string (text, varchar, json,   ``"__debezium_unavailable_value"``
unknown types as text)
bytes (bytea)                  the placeholder's UTF-8 bytes
array of strings               ``["__debezium_unavailable_value"]``
array of uuid                  ``[uuid3 of the placeholder bytes]`` (Java's
                               ``UUID.nameUUIDFromBytes``)
array of bytes                 ``[the placeholder's bytes]``
array of numbers, booleans,    one item per placeholder byte, in the item's type
dates, times, timestamps       (``[95, 95, 100, ...]``; decimals: that unscaled value)
=============================  ==================================================

Fixed-width types (integers, floats, dates, timestamps, uuid) and ``numeric(p,s)`` (at most
1000 digits, under the ~2 kB TOAST threshold) are never stored out of line, so they have no
placeholder; an unchanged value of one would stop the table with a clear error.

The marker is a value a real row may never hold: consumers that merge changes on the key must
keep their current value when they see it (see the package README). REPLICA IDENTITY FULL
avoids it altogether: the old image carries the value and the connector copies it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from datamesh.cdc.avro_binary import (
    FALSE,
    TRUE,
    VALUE_BRANCH,
    array_bytes,
    bytes_bytes,
    decimal_bytes,
    double_bytes,
    float_bytes,
    long_bytes,
)

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
UNAVAILABLE_BYTES = UNAVAILABLE_VALUE.encode()
# java.util.UUID.nameUUIDFromBytes: MD5 of the bytes with version 3 and the IETF variant set
UNAVAILABLE_UUID = str(uuid.UUID(bytes=hashlib.md5(UNAVAILABLE_BYTES).digest(), version=3))

_PER_BYTE: dict[str, Callable[[int], bytes]] = {
    "int": long_bytes,
    "long": long_bytes,
    "float": lambda b: float_bytes(float(b)),
    "double": lambda b: double_bytes(float(b)),
    "boolean": lambda b: TRUE if b else FALSE,
}


def unavailable_present(avro: Any) -> bytes | None:
    """The placeholder as the present branch of an optional field of type ``avro``, or None
    when values of that type are never TOASTed (see the module table)."""
    if avro == "string":
        return VALUE_BRANCH + bytes_bytes(UNAVAILABLE_BYTES)
    if avro == "bytes":
        return VALUE_BRANCH + bytes_bytes(UNAVAILABLE_BYTES)
    if isinstance(avro, dict) and avro.get("type") == "array":
        items = [VALUE_BRANCH + item for item in _array_items(avro["items"][1])]
        return VALUE_BRANCH + array_bytes(items)
    return None


def _array_items(element: Any) -> list[bytes]:
    """The encoded (non-null) items of an array placeholder with items of type ``element``."""
    kind = str(element["type"] if isinstance(element, dict) else element)
    logical = element.get("logicalType") if isinstance(element, dict) else None
    if logical == "uuid":
        return [bytes_bytes(UNAVAILABLE_UUID.encode())]
    if kind in ("string", "bytes") and logical != "decimal":
        return [bytes_bytes(UNAVAILABLE_BYTES)]
    if logical == "decimal":
        return [decimal_bytes(b) for b in UNAVAILABLE_BYTES]
    return [_PER_BYTE[kind](b) for b in UNAVAILABLE_BYTES]
