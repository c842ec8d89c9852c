"""Register each table shape's key and envelope schemas; hand out a codec per shape.

Registration is idempotent (a schema already in the subject returns its id), so a restart or a
replayed Relation message costs one cached lookup. A 409 from the registry becomes
:class:`SchemaIncompatible` naming the table and the columns whose type changed.
"""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from datamesh import names
from datamesh.cdc.codec import TableCodec, source_head
from datamesh.cdc.errors import RegistryUnavailable, SchemaIncompatible
from datamesh.cdc.schemas import TableShape, envelope_schema, key_schema
from datamesh.endpoints import registry_user_info
from datamesh.errors import TerminalError

CONFLICT = 409


class SchemaBook:
    """Schema ids and codecs per (topic, table shape), registered on first use."""

    def __init__(self, registry_url: str, database: str, connector_name: str) -> None:
        conf = {"url": registry_url}
        user_info = registry_user_info()  # MESH_SCHEMA_REGISTRY_USER_INFO, from the supervisor
        if user_info:
            conf["basic.auth.user.info"] = user_info
        self._client = SchemaRegistryClient(conf)
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
            return self._client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code == CONFLICT:
                changed = self._changed_fields(subject, schema)
                raise SchemaIncompatible(
                    shape.qualified, subject, changed, exc.error_message
                ) from exc
            if exc.http_status_code >= 500:
                raise RegistryUnavailable(
                    f"schema registry failed registering {subject}: {exc.error_message}",
                    fix="check the registry's health; the connector retries",
                ) from exc
            raise TerminalError(
                f"schema registry refused {subject}: HTTP {exc.http_status_code} "
                f"{exc.error_code} {exc.error_message}",
                fix="read the registry's message above",
            ) from exc
        except Exception as exc:  # the client's transport errors come from httpx or httpx2
            raise RegistryUnavailable(
                f"schema registry unreachable registering {subject}: {exc}",
                fix="check --registry and that the registry is up; the connector retries",
            ) from exc

    def _changed_fields(self, subject: str, new: dict[str, Any]) -> tuple[str, ...]:
        """Fields whose type differs from the latest registered version (best effort)."""
        try:
            latest = json.loads(self._client.get_latest_version(subject).schema.schema_str or "{}")
        except Exception:  # the diff only enriches the message; the 409 stands on its own
            return ()
        old_fields = _row_fields(latest)
        new_fields = _row_fields(new)
        changed = [n for n, t in new_fields.items() if n in old_fields and old_fields[n] != t]
        return tuple(changed)


def _row_fields(schema: dict[str, Any]) -> dict[str, str]:
    """Field name -> JSON of its type, of a Key record or of an Envelope's Value record."""
    record = schema
    if schema.get("name") == "Envelope":
        record = schema["fields"][0]["type"][1]
    return {f["name"]: json.dumps(f["type"], sort_keys=True) for f in record.get("fields", [])}
