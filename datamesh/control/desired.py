"""What each declared product needs to exist: its resources, derived from the declaration alone.

Pure functions of the frozen products. The ``fingerprint`` of a product is a hash of everything in
its declaration (and its inputs' schemas) that shapes the job or table it runs: the controller
records it when it applies the product, and a different fingerprint later means "re-apply"
(re-validate the SQL through the gateway and upgrade from a savepoint when the job's statements
changed) — so a no-op ``plan`` never has to ask the Flink SQL Gateway anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamesh import names
from datamesh.avro_schema import key_record
from datamesh.specs.product import DataProduct, TopicSettings

WEEK_MS = 7 * 86_400_000


@dataclass(frozen=True)
class DesiredSubject:
    """A registry subject: its compatibility level, and the schema the platform registers there
    (``None`` for a CDC product's subjects, whose schemas its connector derives from the table)."""

    subject: str
    level: str
    schema: dict[str, Any] | None


@dataclass(frozen=True)
class DesiredProduct:
    """Every resource one product runs on (``None``/empty where its kind has none)."""

    product: DataProduct
    fingerprint: str
    topic: str | None
    topic_settings: TopicSettings | None
    dlq: str | None
    dlq_settings: TopicSettings | None
    subjects: tuple[DesiredSubject, ...]
    job: str | None
    connector: str | None
    source_table: str | None
    sink_table: str | None

    @property
    def id(self) -> str:
        """The product's id."""
        return self.product.id


def desired(product: DataProduct, by_id: Mapping[str, DataProduct]) -> DesiredProduct:
    """The resources of ``product`` (its inputs looked up in ``by_id``)."""
    p = product
    topic = names.topic(p) if p.is_kafka_backed else None
    dlq_name = _dlq(p, topic)
    base = p.topic or (by_id[p.inputs[0]].topic if p.inputs and p.inputs[0] in by_id else None)
    retention = base.retention_ms if base else WEEK_MS
    replication = base.replication_factor if base else 1
    return DesiredProduct(
        product=p,
        fingerprint=fingerprint(p, by_id),
        topic=topic,
        topic_settings=p.topic if topic else None,
        dlq=dlq_name,
        dlq_settings=TopicSettings(1, replication, retention, "delete") if dlq_name else None,
        subjects=_subjects(p, topic),
        job=names.flink_job(p) if p.kind in ("processor", "postgres_sink") else None,
        connector=names.connector(p.domain, p.source.database) if p.source else None,
        source_table=f"{p.source.schema}.{p.source.table}" if p.source else None,
        sink_table=_sink_table(p),
    )


def _dlq(p: DataProduct, topic: str | None) -> str | None:
    if p.kind == "processor" and topic:
        return names.dlq_topic(topic)
    if p.kind == "postgres_sink" or (
        p.kind == "iceberg_sink" and p.sink is not None and p.sink.on_bad_record == "dlq"
    ):
        return names.sink_dlq_topic(p)
    return None


def _subjects(p: DataProduct, topic: str | None) -> tuple[DesiredSubject, ...]:
    if topic is None:
        return ()
    value = p.value_schema if p.kind == "processor" else None
    key = key_record(value, p.key) if value is not None and p.key else None
    return (
        DesiredSubject(names.key_subject(topic), p.compatibility, key),
        DesiredSubject(names.value_subject(topic), p.compatibility, value),
    )


def _sink_table(p: DataProduct) -> str | None:
    if p.kind == "iceberg_sink":
        return ".".join(names.iceberg_table(p))
    if p.kind == "postgres_sink" and p.sink is not None:
        return f"{p.sink.database}.{p.sink.table or 'public.' + p.name}"
    return None


def fingerprint(p: DataProduct, by_id: Mapping[str, DataProduct]) -> str:
    """Hash of what shapes the product's job or table: SQL, typed options, key, schema, sink and
    Flink settings, and its inputs' schemas and keys (16 hex digits)."""
    inputs = [
        {"id": i, "schema": by_id[i].value_schema, "key": list(by_id[i].key)}
        for i in p.inputs
        if i in by_id
    ]
    doc = {
        "kind": p.kind,
        "sql": p.sql,
        "processor": p.processor,
        "key": list(p.key),
        "schema": p.value_schema,
        "flink": p.flink,
        "sink": repr(p.sink),
        "source": repr(p.source),
        "topic": repr(p.topic),
        "inputs": inputs,
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pipeline_order(products: Sequence[DataProduct]) -> list[DataProduct]:
    """Products with every input before its consumers (then by id): the order resources are
    created in. Inputs that are not among ``products`` are ignored."""
    by_id = {p.id: p for p in products}
    done: set[str] = set()
    out: list[DataProduct] = []

    def visit(pid: str, path: tuple[str, ...]) -> None:
        if pid in done or pid not in by_id or pid in path:
            return
        for i in sorted(by_id[pid].inputs):
            visit(i, (*path, pid))
        done.add(pid)
        out.append(by_id[pid])

    for pid in sorted(by_id):
        visit(pid, ())
    return out
