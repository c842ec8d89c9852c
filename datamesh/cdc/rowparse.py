"""Per-table-shape decoders of pgoutput row messages that encode the event in the same pass.

The generic path decodes a message into a named tuple of text values (:mod:`pgoutput`), then
encodes those (:mod:`rowcode`) and wraps them in an envelope (:mod:`codec`): three passes over
the columns, two intermediate tuples. Once a table's shape is known (its Relation message), the
connector compiles three functions that read the TupleData straight out of the message and
return the Kafka key and the framed envelope: one pass, no intermediate objects. Like
:mod:`rowcode`, the generated source holds only positional names (``v0``, ``p3``...).

- ``insert(buf, src, end) -> (key, value)``: ``I`` messages;
- ``update(buf, src, end) -> (key, value)``: ``U`` messages with the full old image (``O``,
  identity FULL): values both images share are encoded once, an unchanged TOAST value (``u``)
  is taken from the old image; an update that moves the primary key raises :class:`Slow`.
  ``U`` messages without an old image (identity DEFAULT or USING INDEX, key unchanged): a null
  ``before``, and ``u`` written as the column's placeholder (:mod:`datamesh.cdc.unavailable`);
- ``delete(buf, src, end) -> (key, value)``: ``D`` messages with the full old image (``O``) or
  the key-only one (``K``: the identity columns, every other column null).

``src`` is the source block up to and including the LSN, ``end`` the op and the envelope's
``ts_ms``. The fast path covers the common shapes only: any other form (an update's key
image, a column count that differs from the shape, a binary value, a value an encoder rejects,
a message whose length does not add up) raises, and the caller takes the generic path, which
decodes and reports precisely. Nothing is sent before these functions return.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from datamesh.cdc.avro_binary import (
    NULL_BRANCH,
    ONE_BYTE,
    PRESENT_LAST,
    PRESENT_LEN,
    PRESENT_MORE,
    PRESENT_ONE,
    VALUE_BRANCH,
    present_bytes,
    present_long_text,
)
from datamesh.cdc.pgtypes import AvroColumnType

Encoder = Callable[[bytes], bytes]
RowFn = Callable[[bytes, bytes, bytes], tuple[bytes, bytes]]


class Slow(Exception):
    """This message needs the generic path (not an error)."""


# What a generated function may raise on a message it does not handle (caller: generic path).
FALLBACK = (Slow, ValueError, TypeError, IndexError, struct.error)


def _encode(i: int, out: str, raw: str, kind: str | int) -> list[str]:
    """Lines binding ``{out}{i}`` to the encoding of ``raw`` (``n`` bytes long): strings,
    integers and decimals of a fixed scale (``kind``) inline, since a call costs as much as
    their encoding; anything else, and any unusual value, through the column's ``e{i}``."""
    if kind == "string":
        return [f"        {out}{i} = PLEN[n] + {raw} if n < 4096 else e{i}({raw})"]
    if kind == "int":
        return [
            f"        x = int({raw})",
            "        z = (x << 1) ^ (x >> 63)",
            "        if z < 128:",
            f"            {out}{i} = PONE[z]",
            "        elif z < 16384:",
            f"            {out}{i} = PLAST[z]",
            "        elif z < 2097152:",
            f"            {out}{i} = PMORE[z & 16383] + ONE[z >> 14]",
            "        else:",
            f"            {out}{i} = e{i}({raw})",
        ]
    if isinstance(kind, int):  # numeric(p, s) text always has exactly s fraction digits
        return [
            f"        if n > {kind} and {raw}[n - {kind + 1}] == 46:",
            f"            x = int({raw}.replace(b'.', b''))",
            "            z = (abs(x).bit_length() + 8) // 8",
            f"            {out}{i} = PLEN[z] + x.to_bytes(z, 'big', signed=True)",
            "        else:",
            f"            {out}{i} = e{i}({raw})",
        ]
    return [f"        {out}{i} = e{i}({raw})"]


def _column(
    i: int, kind: str | int, out: str, keep: str | None = None, unavailable: bool = False
) -> list[str]:
    """Source lines reading column ``i`` at ``pos`` into the encoded ``{out}{i}``; ``keep``
    also binds the raw text (None for NULL) to ``{keep}{i}``; ``unavailable`` writes an
    unchanged TOAST value as the column's placeholder ``U{i}``."""
    raw = f"{keep}{i}" if keep else "v"
    null = [f"        {keep}{i} = None"] if keep else []
    toast = ["    elif k == 117:", "        pos += 1", f"        {out}{i} = U{i}"]
    return [
        "    k = buf[pos]",
        "    if k == 116:",
        "        (n,) = I32(buf, pos + 1)",
        "        pos += 5 + n",
        f"        {raw} = buf[pos - n:pos]",
        *_encode(i, out, raw, kind),
        "    elif k == 110:",
        "        pos += 1",
        f"        {out}{i} = NULL",
        *null,
        *(toast if unavailable else []),
        "    else:",
        "        raise Slow",
    ]


def _new_column(i: int, kind: str | int) -> list[str]:
    """Column ``i`` of an update's new image: shared values reuse the old image's encoding."""
    return [
        "    k = buf[pos]",
        "    if k == 116:",
        "        (n,) = I32(buf, pos + 1)",
        "        pos += 5 + n",
        "        v = buf[pos - n:pos]",
        f"        if v == o{i}:",
        f"            a{i} = b{i}",
        "        else:",
        *["    " + line for line in _encode(i, "a", "v", kind)],
        "    elif k == 110:",
        "        pos += 1",
        f"        a{i} = NULL",
        "    elif k == 117:",  # unchanged TOAST: the full old image has it
        "        pos += 1",
        f"        a{i} = b{i}",
        "    else:",
        "        raise Slow",
    ]


def _kind(column: AvroColumnType) -> str | int:
    """How a column's values are encoded inline: "string", "int", a decimal's scale, "call"."""
    if column.present is present_bytes:
        return "string"
    if column.present is present_long_text:
        return "int"
    avro = column.avro
    if isinstance(avro, dict) and avro.get("logicalType") == "decimal" and avro["scale"] > 0:
        return int(avro["scale"])
    return "call"


def _compile(
    lines: list[str], name: str, encoders: Sequence[Encoder], consts: dict[str, Any]
) -> Any:
    namespace: dict[str, Any] = {f"e{i}": enc for i, enc in enumerate(encoders)}
    namespace.update(
        consts,
        I32=struct.Struct(">i").unpack_from,
        NULL=NULL_BRANCH,
        Slow=Slow,
        PLEN=PRESENT_LEN,
        PONE=PRESENT_ONE,
        PLAST=PRESENT_LAST,
        PMORE=PRESENT_MORE,
        ONE=ONE_BYTE,
    )
    exec(compile("\n".join(lines) + "\n", f"<cdc rowparse {name}>", "exec"), namespace)
    return namespace[name]


def _key(prefix: str, key: Sequence[int]) -> str:
    return "FRAME + " + " + ".join(f"{prefix}{k}[1:]" for k in key)


def _parts(prefix: str, n: int) -> str:
    return ", ".join(f"{prefix}{i}" for i in range(n))


def _head(markers: str) -> list[str]:
    """Check the image marker at byte 5 (one of ``markers``) and the column count; ``pos`` at
    the first value."""
    wrong = " and ".join(f"buf[5] != {ord(m)}" for m in markers)
    return [
        f"    if {wrong} or buf[6:8] != NC:",
        "        raise Slow",
        "    pos = 8",
    ]


_TAIL = ["    if pos != len(buf):", "        raise Slow"]  # the message ends with its tuple


def _one_image(
    name: str,
    markers: str,
    kinds: Sequence[str | int],
    key: Sequence[int],
    body: str,
    unavailable: Sequence[bool] = (),
) -> list[str]:
    """Source of ``insert``/``delete``/``update_new``: one image, returned inside ``body``'s
    envelope start; ``unavailable``: the columns whose ``u`` values become placeholders."""
    lines = [f"def {name}(buf, src, end):", *_head(markers)]
    for i, kind in enumerate(kinds):
        lines += _column(i, kind, "p", unavailable=bool(unavailable) and unavailable[i])
    return [*lines, *_TAIL, f"    return {_key('p', key)}, b''.join(({body}, src, end))"]


def _update(kinds: Sequence[str | int], key: Sequence[int]) -> list[str]:
    """Source of ``update``: the full old image, then the new one sharing its encodings; a
    message without an old image goes to ``update_new`` (``NEW``)."""
    n = len(kinds)
    lines = [
        "def update(buf, src, end):",
        "    if buf[5] == 78:",
        "        return NEW(buf, src, end)",
    ]
    lines += _head("O")
    for i, kind in enumerate(kinds):
        lines += _column(i, kind, "b", keep="o")
    lines += ["    if buf[pos] != 78 or buf[pos + 1:pos + 3] != NC:", "        raise Slow"]
    lines.append("    pos += 3")
    for i, kind in enumerate(kinds):
        lines += _new_column(i, kind)
    return [
        *lines,
        *_TAIL,
        f"    key = {_key('a', key)}",
        f"    if key != {_key('b', key)}:",
        "        raise Slow",  # the primary key moved: delete + tombstone + create
        f"    return key, b''.join((WITH_BEFORE, {_parts('b', n)}, V, {_parts('a', n)}, src, end))",
    ]


def compile_row_functions(
    columns: Sequence[AvroColumnType],
    key: Sequence[int],
    key_frame: bytes,
    value_frame: bytes,
    unavailable: Sequence[bytes | None],
) -> tuple[RowFn, RowFn, RowFn]:
    """(insert, update, delete) for a shape with these column types and key positions;
    ``unavailable``: each column's encoded placeholder (None: never TOASTed)."""
    kinds = [_kind(c) for c in columns]
    parts = _parts("p", len(columns))
    toasted = [u is not None for u in unavailable]
    # Debezium (PostgresChangeRecordEmitter.getOldColumnValues): no old tuple, no before
    update_new = _one_image("update_new", "N", kinds, key, f"ONLY_AFTER, {parts}", toasted)
    sources = {
        "insert": _one_image("insert", "N", kinds, key, f"ONLY_AFTER, {parts}"),
        "update": _update(kinds, key),
        "delete": _one_image("delete", "OK", kinds, key, f"WITH_BEFORE, {parts}, N"),
    }
    consts = {
        "FRAME": key_frame,
        "NC": len(columns).to_bytes(2, "big"),
        "ONLY_AFTER": value_frame + NULL_BRANCH + VALUE_BRANCH,
        "WITH_BEFORE": value_frame + VALUE_BRANCH,
        "V": VALUE_BRANCH,
        "N": NULL_BRANCH,
    }
    consts.update({f"U{i}": u for i, u in enumerate(unavailable) if u is not None})
    encoders = [c.present for c in columns]
    consts["NEW"] = _compile(update_new, "update_new", encoders, consts)
    insert, update, delete = (
        _compile(lines, name, encoders, consts) for name, lines in sources.items()
    )
    return insert, update, delete
