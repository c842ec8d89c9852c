"""The pgoutput decoder on hand-built protocol messages (pure: no services)."""

from __future__ import annotations

import struct

import pytest

from datamesh.cdc import pgoutput as P
from datamesh.cdc.errors import DecodeError

PG_EPOCH_US = P.PG_EPOCH_OFFSET_US


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def tuple_data(*values: bytes | str | None) -> bytes:
    """TupleData: 't' text, 'n' null, 'u' unchanged TOAST (pass the string 'u')."""
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "u":
            out += b"u"
        else:
            assert isinstance(v, bytes)
            out += b"t" + struct.pack(">i", len(v)) + v
    return out


def test_begin_and_commit() -> None:
    begin = P.decode(b"B" + struct.pack(">QqI", 0x1_0000_0010, 5_000_000, 742))
    assert begin == P.Begin(0x1_0000_0010, 5_000_000 + PG_EPOCH_US, 742)
    commit = P.decode(b"C" + struct.pack(">BQQq", 0, 100, 148, 7))
    assert commit == P.Commit(100, 148, 7 + PG_EPOCH_US)


def test_relation_with_columns_and_identity() -> None:
    payload = (
        b"R"
        + struct.pack(">I", 16384)
        + cstr("public")
        + cstr("movies")
        + b"f"
        + struct.pack(">h", 2)
        + b"\x01"
        + cstr("id")
        + struct.pack(">Ii", 23, -1)
        + b"\x00"
        + cstr("price")
        + struct.pack(">Ii", 1700, (10 << 16 | 2) + 4)
    )
    rel = P.decode(payload)
    assert rel == P.Relation(
        16384,
        "public",
        "movies",
        "f",
        (P.Column(True, "id", 23, -1), P.Column(False, "price", 1700, (10 << 16 | 2) + 4)),
    )


def test_relation_in_pg_catalog_has_empty_namespace() -> None:
    payload = b"R" + struct.pack(">I", 1) + cstr("") + cstr("t") + b"d" + struct.pack(">h", 0)
    assert P.decode(payload).namespace == "pg_catalog"  # type: ignore[union-attr]


def test_insert_with_null_and_text() -> None:
    msg = P.decode(b"I" + struct.pack(">I", 7) + b"N" + tuple_data(b"1", None, b"caf\xc3\xa9"))
    assert msg == P.Insert(7, (b"1", None, b"caf\xc3\xa9"))


def test_update_with_old_image_and_unchanged_toast() -> None:
    payload = (
        b"U"
        + struct.pack(">I", 7)
        + b"O"
        + tuple_data(b"1", b"old", b"big")
        + b"N"
        + tuple_data(b"1", b"new", "u")
    )
    msg = P.decode(payload)
    assert msg == P.Update(7, (b"1", b"old", b"big"), False, (b"1", b"new", P.UNCHANGED))


def test_update_with_key_only_and_without_old() -> None:
    keyed = P.decode(
        b"U" + struct.pack(">I", 7) + b"K" + tuple_data(b"1", None) + b"N" + tuple_data(b"2", b"x")
    )
    assert keyed == P.Update(7, (b"1", None), True, (b"2", b"x"))
    plain = P.decode(b"U" + struct.pack(">I", 7) + b"N" + tuple_data(b"2", b"x"))
    assert plain == P.Update(7, None, False, (b"2", b"x"))


def test_delete_full_and_key() -> None:
    full = P.decode(b"D" + struct.pack(">I", 7) + b"O" + tuple_data(b"1", b"x"))
    assert full == P.Delete(7, (b"1", b"x"), False)
    key = P.decode(b"D" + struct.pack(">I", 7) + b"K" + tuple_data(b"1", None))
    assert key == P.Delete(7, (b"1", None), True)


def test_truncate_many_relations() -> None:
    msg = P.decode(b"T" + struct.pack(">iB3I", 3, 2, 10, 11, 12))
    assert msg == P.Truncate(2, (10, 11, 12))


def test_message_origin_and_type_are_decoded() -> None:
    msg = P.decode(
        b"M" + b"\x00" + struct.pack(">Q", 99) + cstr("hb") + struct.pack(">i", 2) + b"ok"
    )
    assert msg == P.Message(False, 99, "hb", b"ok")
    assert P.decode(b"O" + struct.pack(">Q", 5) + cstr("node_a")) == P.Origin(5, "node_a")
    typ = P.decode(b"Y" + struct.pack(">I", 90000) + cstr("public") + cstr("mood"))
    assert typ == P.TypeInfo(90000, "public", "mood")


def test_unknown_message_type_names_the_fix() -> None:
    with pytest.raises(DecodeError, match="unknown pgoutput message type b'Z'") as info:
        P.decode(b"Z\x00")
    assert "proto_version 1" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        b"B\x00\x01",  # short Begin
        b"I"
        + struct.pack(">I", 7)
        + b"N"
        + struct.pack(">h", 1)
        + b"t"
        + struct.pack(">i", 10)
        + b"abc",
        b"R" + struct.pack(">I", 1) + b"public",  # unterminated string
    ],
)
def test_truncated_messages_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        P.decode(payload)


def test_binary_values_are_refused() -> None:
    payload = (
        b"I"
        + struct.pack(">I", 7)
        + b"N"
        + struct.pack(">h", 1)
        + b"b"
        + struct.pack(">i", 1)
        + b"x"
    )
    with pytest.raises(DecodeError, match="binary"):
        P.decode(payload)
