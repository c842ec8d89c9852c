"""A pure decoder of PostgreSQL's ``pgoutput`` logical replication messages (protocol 1).

Format: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html. Values
stay in the text form PostgreSQL's output functions produced (``bytes``); ``None`` is SQL NULL
and :data:`UNCHANGED` an unchanged TOASTed value ('u'), which the caller fills from the old
image. Protocol 1 never carries the streamed-transaction xid prefix, so none is parsed.

This module is the hot path of the connector: it uses precompiled ``struct`` unpackers and
returns named tuples, and never imports anything beyond the standard library.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from datamesh.cdc.errors import DecodeError

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_BEGIN = struct.Struct(">QqI").unpack_from
_COMMIT = struct.Struct(">BQQq").unpack_from

# PostgreSQL timestamps count microseconds from 2000-01-01; Unix time from 1970-01-01.
PG_EPOCH_OFFSET_US = 946_684_800_000_000


class _Unchanged:
    """Marker of an unchanged TOASTed value: the new image does not carry it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
Value = bytes | None | _Unchanged
Row = tuple[Value, ...]


class Begin(NamedTuple):
    """Start of a transaction; ``commit_ts_us`` is Unix microseconds."""

    final_lsn: int
    commit_ts_us: int
    xid: int


class Commit(NamedTuple):
    """End of a transaction; ``end_lsn`` is what a consumer confirms once it has it durably."""

    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


class Origin(NamedTuple):
    """Replication origin of the transaction (ignored by the connector)."""

    lsn: int
    name: str


class Column(NamedTuple):
    """One column of a Relation message; ``key`` is set for replica-identity columns."""

    key: bool
    name: str
    type_oid: int
    typmod: int


class Relation(NamedTuple):
    """Shape of a table, sent before its first change and again after every DDL on it."""

    oid: int
    namespace: str
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]


class TypeInfo(NamedTuple):
    """A non-built-in type used by a relation (ignored: unknown OIDs map to strings)."""

    oid: int
    namespace: str
    name: str


class Insert(NamedTuple):
    """A new row."""

    relid: int
    new: Row


class Update(NamedTuple):
    """A changed row; ``old`` is the old image ('O', full identity) or key ('K'), if sent."""

    relid: int
    old: Row | None
    old_is_key: bool
    new: Row


class Delete(NamedTuple):
    """A removed row; ``old`` is the old image ('O') or only its key columns ('K')."""

    relid: int
    old: Row
    old_is_key: bool


class Truncate(NamedTuple):
    """TRUNCATE of one or more relations (``options``: 1 CASCADE, 2 RESTART IDENTITY)."""

    options: int
    relids: tuple[int, ...]


class Message(NamedTuple):
    """A ``pg_logical_emit_message`` record (heartbeats are non-transactional ones)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


PgOutputMessage = (
    Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | Message
)


def decode(payload: bytes) -> PgOutputMessage:
    """Decode one pgoutput message; raise :class:`DecodeError` naming the byte that is wrong."""
    try:
        return _DECODERS[payload[0]](payload)
    except KeyError:
        raise DecodeError(
            f"unknown pgoutput message type {payload[:1]!r}",
            fix="the connector speaks proto_version 1; check the slot uses the pgoutput plugin",
        ) from None
    except (struct.error, IndexError, ValueError) as exc:  # ValueError: no NUL, bad UTF-8
        raise DecodeError(
            f"truncated or corrupt pgoutput {payload[:1]!r} message ({len(payload)} bytes): {exc}",
            fix="report it with the server version; restart resumes from the slot",
        ) from exc


def _begin(buf: bytes) -> Begin:
    final_lsn, ts, xid = _BEGIN(buf, 1)
    return Begin(final_lsn, ts + PG_EPOCH_OFFSET_US, xid)


def _commit(buf: bytes) -> Commit:
    _flags, commit_lsn, end_lsn, ts = _COMMIT(buf, 1)
    return Commit(commit_lsn, end_lsn, ts + PG_EPOCH_OFFSET_US)


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(0, pos)
    return buf[pos:end].decode(), end + 1


def _origin(buf: bytes) -> Origin:
    (lsn,) = _U64(buf, 1)
    name, _ = _cstring(buf, 9)
    return Origin(lsn, name)


def _relation(buf: bytes) -> Relation:
    (oid,) = _U32(buf, 1)
    namespace, pos = _cstring(buf, 5)
    name, pos = _cstring(buf, pos)
    identity = chr(buf[pos])
    (ncols,) = _I16(buf, pos + 1)
    pos += 3
    columns = []
    for _ in range(ncols):
        flags = buf[pos]
        col, pos = _cstring(buf, pos + 1)
        (type_oid,) = _U32(buf, pos)
        (typmod,) = _I32(buf, pos + 4)
        pos += 8
        columns.append(Column(bool(flags & 1), col, type_oid, typmod))
    return Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))


def _type(buf: bytes) -> TypeInfo:
    (oid,) = _U32(buf, 1)
    namespace, pos = _cstring(buf, 5)
    name, _ = _cstring(buf, pos)
    return TypeInfo(oid, namespace, name)


def _tuple(buf: bytes, pos: int) -> tuple[Row, int]:
    """TupleData at ``pos``: returns the values and the position after them."""
    (ncols,) = _I16(buf, pos)
    pos += 2
    values: list[Value] = []
    append = values.append
    for _ in range(ncols):
        kind = buf[pos]
        if kind == 116:  # 't' text
            (length,) = _I32(buf, pos + 1)
            pos += 5
            append(buf[pos : pos + length])
            pos += length
        elif kind == 110:  # 'n' null
            append(None)
            pos += 1
        elif kind == 117:  # 'u' unchanged TOAST
            append(UNCHANGED)
            pos += 1
        else:  # 'b' binary is only sent when the 'binary' option is on, which we never set
            raise DecodeError(
                f"unexpected tuple value kind {chr(kind)!r} at byte {pos}",
                fix="do not pass the 'binary' option to pgoutput",
            )
    if pos > len(buf):  # a slice past the end does not raise: check once per tuple
        raise IndexError(f"tuple data ends at byte {pos}, message has {len(buf)}")
    return tuple(values), pos


def _insert(buf: bytes) -> Insert:
    (relid,) = _U32(buf, 1)
    new, _ = _tuple(buf, 6)  # byte 5 is 'N'
    return Insert(relid, new)


def _update(buf: bytes) -> Update:
    (relid,) = _U32(buf, 1)
    marker = buf[5]
    if marker == 78:  # 'N': no old image (identity columns unchanged, identity not FULL)
        new, _ = _tuple(buf, 6)
        return Update(relid, None, False, new)
    old, pos = _tuple(buf, 6)
    new, _ = _tuple(buf, pos + 1)
    return Update(relid, old, marker == 75, new)  # 75 'K', 79 'O'


def _delete(buf: bytes) -> Delete:
    (relid,) = _U32(buf, 1)
    old, _ = _tuple(buf, 6)
    return Delete(relid, old, buf[5] == 75)


def _truncate(buf: bytes) -> Truncate:
    (count,) = _I32(buf, 1)
    options = buf[5]
    relids = struct.unpack_from(f">{count}I", buf, 6)
    return Truncate(options, tuple(relids))


def _message(buf: bytes) -> Message:
    flags = buf[1]
    (lsn,) = _U64(buf, 2)
    prefix, pos = _cstring(buf, 10)
    (length,) = _I32(buf, pos)
    return Message(bool(flags & 1), lsn, prefix, buf[pos + 4 : pos + 4 + length])


_DECODERS: dict[int, Callable[[bytes], PgOutputMessage]] = {
    ord("B"): _begin,
    ord("C"): _commit,
    ord("O"): _origin,
    ord("R"): _relation,
    ord("Y"): _type,
    ord("I"): _insert,
    ord("U"): _update,
    ord("D"): _delete,
    ord("T"): _truncate,
    ord("M"): _message,
}
