"""Decode many Confluent-framed Avro bodies of one writer schema into Arrow columns at once.

Decoding record by record (fastavro: a Python dict per record) costs ~30 µs per CDC envelope and
was ~70% of a sink batch; polars' Avro reader (Rust, columnar) decodes the same bodies ~16x
faster. The bodies are wrapped, unchanged, in one block of an in-memory Avro object container
(header: magic, schema, codec ``null``, sync marker; block: count, size, bodies, sync).

polars' parser refuses two things Avro allows: a named type referenced again by name
(``"after": ["null", "Value"]``) and non-null string defaults; the header schema therefore
inlines named types and drops defaults — neither changes how a body is encoded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from datamesh.cdc.avro_binary import long_bytes

SYNC = b"mesh-avro-block!"  # any 16 bytes: the marker only has to match within this container


class BlockUnreadable(ValueError):
    """polars could not decode the block (the caller decodes record by record instead)."""


def header_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with named types inlined where referenced and defaults dropped."""
    named: dict[str, Any] = {}

    def visit(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            full = node if "." in node or not namespace else f"{namespace}.{node}"
            found = named.get(full) or named.get(node)
            return json.loads(json.dumps(found)) if found is not None else node
        if isinstance(node, list):
            return [visit(n, namespace) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: v for k, v in node.items() if k != "default"}
        kind = out.get("type")
        if kind in ("record", "enum", "fixed"):
            ns = out.get("namespace", namespace)
            if kind == "record":
                out["fields"] = [
                    {
                        k: (visit(v, ns) if k == "type" else v)
                        for k, v in f.items()
                        if k != "default"
                    }
                    for f in out["fields"]
                ]
            full = f"{ns}.{out['name']}" if ns and "." not in out["name"] else out["name"]
            named[full] = out
            return out
        if kind == "array":
            out["items"] = visit(out["items"], namespace)
        elif kind == "map":
            out["values"] = visit(out["values"], namespace)
        elif isinstance(kind, (dict, list)):
            out["type"] = visit(kind, namespace)
        return out

    return dict(visit(schema, schema.get("namespace")))


def _bytes(value: bytes) -> bytes:
    return long_bytes(len(value)) + value


def container(schema: dict[str, Any], bodies: Sequence[bytes]) -> bytes:
    """An Avro object container holding ``bodies`` (schemaless encodings) as one block."""
    meta = (
        long_bytes(2)
        + _bytes(b"avro.schema")
        + _bytes(json.dumps(header_schema(schema)).encode())
        + _bytes(b"avro.codec")
        + _bytes(b"null")
        + long_bytes(0)
    )
    block = b"".join(bodies)
    return (
        b"Obj\x01" + meta + SYNC + long_bytes(len(bodies)) + long_bytes(len(block)) + block + SYNC
    )


def decode_block(schema: dict[str, Any], bodies: Sequence[bytes]) -> pa.Table:
    """The decoded bodies as an Arrow table (one column per top-level field, in order)."""
    try:
        table = pl.read_avro(io.BytesIO(container(schema, bodies))).to_arrow()
    except Exception as exc:  # polars raises its own error types per failure
        raise BlockUnreadable(f"{type(exc).__name__}: {exc}") from exc
    if table.num_rows != len(bodies):
        raise BlockUnreadable(f"decoded {table.num_rows} rows of {len(bodies)}")
    return table
