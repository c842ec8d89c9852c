"""Register each table shape's key and envelope schemas; hand out a codec per shape.

Registration is idempotent (a schema already in the subject returns its id), so a restart or a
replayed Relation message costs one cached lookup. It goes through the platform's one registry
client (:class:`datamesh.schema_client.SchemaClient`, with its credentials and error mapping):
only a registry that cannot be reached or cannot serve is retried by the connector
(:class:`RegistryUnavailable` is transient); a 409 becomes :class:`SchemaIncompatible` naming
the table and the columns whose type changed; any other refusal, and any bug, stops it.
"""

from __future__ import annotations

import json
from typing import Any

from datamesh import names
from datamesh.cdc.codec import TableCodec, source_head
from datamesh.cdc.errors import SchemaIncompatible
from datamesh.cdc.schemas import TableShape, envelope_schema, key_schema
from datamesh.schema_client import IncompatibleSchema, SchemaClient


class SchemaBook:
    """Schema ids and codecs per (topic, table shape), registered on first use."""

    def __init__(self, registry_url: str, database: str, connector_name: str) -> None:
        # credentials: MESH_SCHEMA_REGISTRY_USER_INFO, passed on by the supervisor
        self._client = SchemaClient(registry_url)
        self._database = database
        self._head = source_head(connector_name)
        self._codecs: dict[tuple[str, object], TableCodec] = {}

    def codec(self, topic: str, shape: TableShape) -> TableCodec:
        """The codec of ``shape`` on ``topic``, registering its schemas the first time."""
        cache_key = (topic, shape.signature())
        codec = self._codecs.get(cache_key)
        if codec is None:
            key_id = self._register(names.key_subject(topic), key_schema(topic, shape), shape)
            value_schema = envelope_schema(topic, shape)
            value_id = self._register(names.value_subject(topic), value_schema, shape)
            codec = TableCodec(shape, self._database, key_id, value_id, self._head)
            self._codecs[cache_key] = codec
        return codec

    def _register(self, subject: str, schema: dict[str, Any], shape: TableShape) -> int:
        try:
            return self._client.register_id(subject, schema)
        except IncompatibleSchema as exc:
            changed = self._changed_fields(subject, schema)
            raise SchemaIncompatible(
                shape.qualified, subject, changed, "; ".join(exc.reasons)
            ) from exc

    def _changed_fields(self, subject: str, new: dict[str, Any]) -> tuple[str, ...]:
        """Fields whose type differs from the latest registered version."""
        latest = self._client.latest(subject)
        if latest is None:
            return ()
        old_fields = _row_fields(latest.schema)
        new_fields = _row_fields(new)
        changed = [n for n, t in new_fields.items() if n in old_fields and old_fields[n] != t]
        return tuple(changed)


def _row_fields(schema: dict[str, Any]) -> dict[str, str]:
    """Field name -> JSON of its type, of a Key record or of an Envelope's Value record."""
    record = schema
    if schema.get("name") == "Envelope":
        record = schema["fields"][0]["type"][1]
    return {f["name"]: json.dumps(f["type"], sort_keys=True) for f in record.get("fields", [])}
