"""Schema controller: the key and value schemas a product registers, checked before anything.

Subjects follow Confluent's TopicNameStrategy (``<topic>-key`` / ``<topic>-value``). A CDC
product's subjects are owned by its connector, which derives the Debezium envelope from the
table itself (PostgreSQL is the source of truth for a CDC schema); the platform only sets their
compatibility level. Processor products register their declared output schema.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from datamesh import names
from datamesh.avro_schema import key_record
from datamesh.schema_client import IncompatibleSchema, Registered, SchemaClient
from datamesh.specs.product import DataProduct


@dataclass(frozen=True)
class DesiredSchema:
    """A subject and the schema the product wants registered there."""

    subject: str
    schema: dict[str, Any]


def desired_schemas(product: DataProduct) -> list[DesiredSchema]:
    """Key and value schemas the platform registers for ``product`` (none for CDC products)."""
    if product.kind != "processor" or product.value_schema is None:
        return []
    topic = names.topic(product)
    out = [DesiredSchema(names.value_subject(topic), product.value_schema)]
    if product.key:
        out.insert(
            0,
            DesiredSchema(names.key_subject(topic), key_record(product.value_schema, product.key)),
        )
    return out


def subjects(product: DataProduct) -> list[str]:
    """Both subjects of a Kafka-backed product."""
    topic = names.topic(product)
    return [names.key_subject(topic), names.value_subject(topic)]


def check_all(client: SchemaClient, product: DataProduct) -> None:
    """Set levels and check every desired schema; raise before anything is registered."""
    for subject in subjects(product):
        if client.level(subject) != product.compatibility:
            client.set_level(subject, product.compatibility)
    for want in desired_schemas(product):
        reasons = client.check(want.subject, want.schema)
        if reasons:
            raise IncompatibleSchema(
                want.subject,
                product.compatibility,
                reasons,
                fix=f"make the change {product.compatibility} compatible (e.g. add a default) or "
                f"publish a new product; declared in {product.declared_in}",
            )


def register_all(client: SchemaClient, product: DataProduct) -> list[Registered]:
    """Register every desired schema (after :func:`check_all` passed)."""
    return [client.register(want.subject, want.schema) for want in desired_schemas(product)]


def diff(registered: dict[str, Any] | None, desired: dict[str, Any]) -> str:
    """Unified diff of the registered and desired schema JSON (pretty-printed)."""
    old = json.dumps(registered, indent=2, sort_keys=True).splitlines() if registered else []
    new = json.dumps(desired, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(old, new, "registered", "declared", lineterm=""))
