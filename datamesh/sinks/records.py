"""Decode Confluent-framed Avro records (magic byte 0, 4-byte schema id, Avro body).

The writer schema of each record is fetched from the registry by id once and parsed once;
fastavro (C-accelerated, what confluent-kafka's own AvroDeserializer uses inside) decodes the
body. Decoding is separate from reading so a bad record can be named by topic, partition and
offset and sent to a dead-letter topic.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import fastavro

from datamesh.errors import MeshError, TransientError

MAGIC = 0
_HEADER = struct.Struct(">bI")


class UndecodableRecord(ValueError):
    """A key or value that is not Confluent-framed Avro of a registered schema."""


class Decoder:
    """Decodes framed records; ``fetch(id)`` returns the writer schema (JSON form) of an id."""

    def __init__(self, fetch: Callable[[int], dict[str, Any]]) -> None:
        self._fetch = fetch
        self._parsed: dict[int, Any] = {}
        self.schemas: dict[int, dict[str, Any]] = {}

    def decode(self, data: bytes) -> tuple[int, Any]:
        """(schema id, decoded datum); raises UndecodableRecord with the reason."""
        if len(data) < _HEADER.size:
            raise UndecodableRecord(f"{len(data)} bytes: too short for the Confluent frame")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise UndecodableRecord(f"magic byte {magic}, expected {MAGIC} (not Confluent-framed)")
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            parsed = self._load(schema_id)
        try:
            return schema_id, fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None)
        except Exception as exc:  # fastavro raises many types for a corrupt body
            raise UndecodableRecord(f"schema id {schema_id}: {type(exc).__name__}: {exc}") from exc

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The writer schema (JSON form) of ``schema_id``; raises UndecodableRecord if unknown."""
        if schema_id not in self.schemas:
            self._load(schema_id)
        return self.schemas[schema_id]

    def _load(self, schema_id: int) -> Any:
        try:
            schema = self._fetch(schema_id)
        except TransientError:
            raise
        except MeshError as exc:
            raise UndecodableRecord(f"schema id {schema_id} is not in the registry: {exc}") from exc
        self.schemas[schema_id] = schema
        self._parsed[schema_id] = fastavro.parse_schema(schema)
        return self._parsed[schema_id]
