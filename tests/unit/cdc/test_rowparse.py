"""The one-pass row decoders (``rowparse``) against the generic path, byte for byte (pure).

Random rows over every mapped type, with NULLs, unchanged TOAST values, varint and decimal
edge cases, are turned into real pgoutput ``I``/``U``/``D`` messages. For each, the generated
function either returns exactly the key and envelope the generic path (``pgoutput.decode`` +
``TableCodec``) produces, or raises one of :data:`rowparse.FALLBACK`, which sends the message to
the generic path. Values the fast path must handle itself are checked to stay on it.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest

from datamesh.cdc import pgoutput as P
from datamesh.cdc.avro_binary import VALUE_BRANCH, long_bytes, string_bytes
from datamesh.cdc.changes import OP_C, OP_D, OP_U
from datamesh.cdc.codec import TableCodec, TxParts, source_head
from datamesh.cdc.rowparse import FALLBACK, Slow
from datamesh.cdc.schemas import TableShape

NUM_10_2 = (10 << 16 | 2) + 4
NUM_5_NEG2 = (5 << 16 | (-2 & 0x7FF)) + 4
RELID = 16384
INTS = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8193, 2**20 - 1, 2**20, -(2**20) - 1, 2**31 - 1]
BIGINTS = [*INTS, 2**62, -(2**63), 2**63 - 1]

# (column, generator of its text values); None = NULL
COLUMNS: list[tuple[P.Column, list[bytes | None]]] = [
    (P.Column(True, "id", 23, -1), [str(i).encode() for i in INTS]),
    (P.Column(True, "region", 25, -1), [b"eu", b"us", "é".encode(), b""]),
    (P.Column(False, "big", 20, -1), [None, *(str(i).encode() for i in BIGINTS)]),
    (P.Column(False, "small", 21, -1), [None, b"-32768", b"32767", b"5"]),
    (
        P.Column(False, "title", 25, -1),
        [None, b"", b"x" * 63, b"y" * 64, b"z" * 5000, "☕".encode()],
    ),
    (
        P.Column(False, "price", 1700, NUM_10_2),
        [None, b"0.00", b"-0.50", b"1.25", b"-1.28", b"12345678.99", b"NaN", b"-99999999.99"],
    ),
    (P.Column(False, "rounded", 1700, NUM_5_NEG2), [None, b"12300", b"-100"]),
    (P.Column(False, "free", 1700, -1), [None, b"3.14159", b"NaN"]),
    (P.Column(False, "at", 1184, -1), [None, b"2024-01-02 03:04:05.5+05:30", b"infinity"]),
    (P.Column(False, "day", 1082, -1), [None, b"2024-02-29", b"-infinity"]),
    (P.Column(False, "flag", 16, -1), [None, b"t", b"f"]),
    (P.Column(False, "ratio", 701, -1), [None, b"0.1", b"-Infinity", b"NaN"]),
    (P.Column(False, "blob", 17, -1), [None, b"\\x00ff"]),
    (P.Column(False, "doc", 3802, -1), [None, b'{"a": 1}']),
    (P.Column(False, "tags", 1007, -1), [None, b"{1,NULL,3}", b"{}"]),
    (P.Column(False, "uid", 2950, -1), [None, b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
]
SHAPE = TableShape("public", "movies", tuple(c for c, _ in COLUMNS), ("id", "region"))
TOASTABLE = {i for i, (c, _) in enumerate(COLUMNS) if c.type_oid in (25, 3802, 17)}
NOT_ON_FAST_PATH = {b"NaN", b"infinity", b"-infinity", b"-Infinity"}  # others stay fast


def tuple_data(row: tuple[object, ...]) -> bytes:
    out = struct.pack(">h", len(row))
    for v in row:
        if v is None:
            out += b"n"
        elif v is P.UNCHANGED:
            out += b"u"
        else:
            assert isinstance(v, bytes)
            out += b"t" + struct.pack(">i", len(v)) + v
    return out


def random_row(rng: random.Random) -> tuple[bytes | None, ...]:
    return tuple(rng.choice(values) for _, values in COLUMNS)


def changed(rng: random.Random, old: tuple[bytes | None, ...]) -> tuple[object, ...]:
    """A new image: some values kept, some TOAST values unchanged, the key mostly kept."""
    new: list[object] = []
    for i, ((column, values), value) in enumerate(zip(COLUMNS, old, strict=True)):
        roll = rng.random()
        if column.key:
            new.append(value if roll < 0.9 else rng.choice(values))
        elif i in TOASTABLE and value is not None and roll < 0.2:
            new.append(P.UNCHANGED)
        else:
            new.append(value if roll < 0.5 else rng.choice(values))
    return tuple(new)


@pytest.fixture(scope="module")
def codec() -> TableCodec:
    codec = TableCodec(SHAPE, "studio", key_id=7, value_id=8, head=HEAD)
    assert codec.source(TX) + long_bytes(LSN) == SRC
    return codec


TX = TxParts.of(1_700_000_000_000, "false", 742, 1_700_000_000_123)
LSN = 0x1_6B37_4D48
HEAD = source_head("studio-cdc")
# the source block up to the LSN, as TableCodec.source(TX) + the LSN builds it in the handler
SRC = b"".join(
    (
        HEAD,
        TX.ts_ms,
        TX.snapshot,
        string_bytes("studio"),
        string_bytes("public"),
        string_bytes("movies"),
        TX.tx_id,
        VALUE_BRANCH,
    )
) + long_bytes(LSN)


def fast_or_none(
    fn: Callable[[bytes, bytes, bytes], tuple[bytes, bytes]], payload: bytes, op: bytes
) -> tuple[bytes, bytes] | None:
    """The one-pass result, or None when the function hands the message to the generic path."""
    try:
        return fn(payload, SRC, op + TX.now)
    except FALLBACK:
        return None


def test_inserts_match_the_generic_path(codec: TableCodec) -> None:
    rng, fast = random.Random(7), 0
    for _ in range(3000):
        row = random_row(rng)
        payload = b"I" + struct.pack(">I", RELID) + b"N" + tuple_data(row)
        assert P.decode(payload) == P.Insert(RELID, row)
        got = fast_or_none(codec.insert, payload, OP_C)
        if NOT_ON_FAST_PATH.isdisjoint(row):
            assert got is not None, row
        if got is not None:
            key, after = codec.keyed(row)
            assert got == (key, codec.event(None, after, OP_C, TX, LSN))
            fast += 1
    assert fast > 1000


def test_updates_match_the_generic_path(codec: TableCodec) -> None:
    rng, fast, moved = random.Random(11), 0, 0
    for _ in range(3000):
        old = random_row(rng)
        new = changed(rng, old)
        payload = b"U" + struct.pack(">I", RELID) + b"O" + tuple_data(old) + b"N" + tuple_data(new)
        got = fast_or_none(codec.update, payload, OP_U)
        old_key, before, key, after = codec.keyed_pair(old, new)  # type: ignore[arg-type]
        if old_key != key:
            assert got is None  # a moved key is the generic path's (delete + create)
            moved += 1
            continue
        if NOT_ON_FAST_PATH.isdisjoint(old) and NOT_ON_FAST_PATH.isdisjoint(new):
            assert got is not None, (old, new)
        if got is not None:
            assert got == (key, codec.event(before, after, OP_U, TX, LSN))
            fast += 1
    assert fast > 1000 and moved > 10


def test_deletes_match_the_generic_path(codec: TableCodec) -> None:
    rng = random.Random(13)
    for _ in range(1000):
        row = random_row(rng)
        payload = b"D" + struct.pack(">I", RELID) + b"O" + tuple_data(row)
        got = fast_or_none(codec.delete, payload, OP_D)
        if got is not None:
            key, before = codec.keyed(row)
            assert got == (key, codec.event(before, None, OP_D, TX, LSN))
        else:
            assert not NOT_ON_FAST_PATH.isdisjoint(row)


def key_only(row: tuple[object, ...]) -> tuple[object, ...]:
    """pgoutput's 'K' image of ``row``: the identity (key) columns, every other column null."""
    return tuple(v if c.key else None for (c, _), v in zip(COLUMNS, row, strict=True))


KEY_ROW = tuple(b"1" if c.key else None for c, _ in COLUMNS)
KEY_IMAGE = tuple_data(KEY_ROW)


def test_updates_without_old_image_match_the_generic_path(codec: TableCodec) -> None:
    """Identity DEFAULT: no old tuple, unchanged TOAST values are Debezium's placeholder."""
    rng, fast, unavailable = random.Random(17), 0, 0
    for _ in range(3000):
        new = changed(rng, random_row(rng))
        payload = b"U" + struct.pack(">I", RELID) + b"N" + tuple_data(new)
        assert P.decode(payload) == P.Update(RELID, None, False, new)  # type: ignore[arg-type]
        got = fast_or_none(codec.update, payload, OP_U)
        if NOT_ON_FAST_PATH.isdisjoint(new):
            assert got is not None, new
        if got is not None:
            key, after = codec.keyed_unavailable(new)  # type: ignore[arg-type]
            assert got == (key, codec.event(None, after, OP_U, TX, LSN))
            fast += 1
            unavailable += P.UNCHANGED in new
    assert fast > 1000 and unavailable > 100


def test_key_only_deletes_match_the_generic_path(codec: TableCodec) -> None:
    """Identity DEFAULT: a delete's 'K' image is its before: key set, every other column null."""
    rng = random.Random(19)
    for _ in range(500):
        row = key_only(random_row(rng))
        payload = b"D" + struct.pack(">I", RELID) + b"K" + tuple_data(row)
        assert P.decode(payload) == P.Delete(RELID, row, True)  # type: ignore[arg-type]
        got = fast_or_none(codec.delete, payload, OP_D)
        key, before = codec.keyed(row)  # type: ignore[arg-type]
        assert got == (key, codec.event(before, None, OP_D, TX, LSN))


@pytest.mark.parametrize(
    "payload",
    [
        b"I" + struct.pack(">I", RELID) + b"N" + tuple_data((b"1",)),  # fewer columns
        b"D" + struct.pack(">I", RELID) + b"K" + tuple_data((b"1", b"eu")),  # column count
        b"U" + struct.pack(">I", RELID) + b"K" + KEY_IMAGE + b"N" + tuple_data(KEY_ROW),
    ],
    ids=["column count", "short key image", "update's key image"],
)
def test_other_forms_go_to_the_generic_path(codec: TableCodec, payload: bytes) -> None:
    fn = {73: codec.insert, 85: codec.update, 68: codec.delete}[payload[0]]
    with pytest.raises(Slow):
        fn(payload, b"", b"")


def test_truncated_and_padded_messages_go_to_the_generic_path(codec: TableCodec) -> None:
    row = random_row(random.Random(1))
    payload = b"I" + struct.pack(">I", RELID) + b"N" + tuple_data(row)
    for broken in (payload[:-1], payload[: len(payload) // 2], payload + b"\0"):
        with pytest.raises(FALLBACK):
            codec.insert(broken, b"", b"")
