"""The resolved, immutable data product every other part of the platform works from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from datamesh.specs.declaration import (
    Access,
    CleanupPolicy,
    Compatibility,
    Kind,
    OnBadRecord,
    Repair,
    SinkMode,
)

KAFKA_KINDS: frozenset[str] = frozenset({"cdc", "processor"})
SINK_KINDS: frozenset[str] = frozenset({"iceberg_sink", "postgres_sink"})


@dataclass(frozen=True)
class Slo:
    """Service level objectives; each may be absent (no check is built for it).

    ``freshness``: the newest event time is at most this old (unless the pipeline is idle);
    ``max_lag``: messages the product's consumers may be behind; ``latency_p99``: source commit
    to output, p99 over the newest changes.
    """

    freshness: timedelta | None = None
    max_lag: int | None = None
    latency_p99: timedelta | None = None


@dataclass(frozen=True)
class TopicSettings:
    """Desired Kafka topic settings (``retention_ms`` -1 means keep forever)."""

    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: CleanupPolicy


@dataclass(frozen=True)
class CdcSource:
    """A table followed by a CDC connector."""

    database: str
    schema: str
    table: str


@dataclass(frozen=True)
class SinkSettings:
    """How a sink writes its one input (resolved: ``mode`` is always set).

    ``partition_by`` holds Iceberg partition fields as declared (``day(updated_at)``);
    ``database``/``table`` are the PostgreSQL target of a ``postgres_sink``.
    """

    mode: SinkMode
    partition_by: tuple[str, ...] = ()
    on_bad_record: OnBadRecord = "fail"
    database: str = "serving"
    table: str = ""

    @property
    def pg_schema(self) -> str:
        """Schema part of ``table``."""
        return self.table.split(".", 1)[0]

    @property
    def pg_table(self) -> str:
        """Table part of ``table``."""
        return self.table.split(".", 1)[1]


@dataclass(frozen=True)
class DataProduct:
    """A validated data product: its identity, contract, SLOs and where it was declared.

    ``value_schema`` is the parsed Avro record (JSON form) of one row of the product.
    ``inputs`` are product ids (``<domain>.<name>``), already checked to exist.
    """

    domain: str
    name: str
    kind: Kind
    description: str
    owners: tuple[str, ...]
    access: Access
    tier: int
    slo: Slo
    key: tuple[str, ...]
    inputs: tuple[str, ...]
    value_schema: dict[str, Any] | None
    topic: TopicSettings | None
    compatibility: Compatibility
    declared_in: Path
    source: CdcSource | None = None
    sql: str | None = None
    consumes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    sql_file: Path | None = None
    processor: dict[str, Any] | None = None
    flink: dict[str, Any] = field(default_factory=dict)
    sink: SinkSettings | None = None
    allow: tuple[str, ...] = ()
    retired: bool = False
    repair: Repair = "manual"
    audit_every: timedelta | None = None
    heartbeat: timedelta | None = None  # cdc only: synthetic events every this (opt-in)

    @property
    def id(self) -> str:
        """``<domain>.<name>``: how other declarations refer to this product."""
        return f"{self.domain}.{self.name}"

    @property
    def is_kafka_backed(self) -> bool:
        """True for products whose data lives in a Kafka topic."""
        return self.kind in KAFKA_KINDS

    @property
    def is_sink(self) -> bool:
        """True for products that write their input into a table."""
        return self.kind in SINK_KINDS

    def field_names(self) -> tuple[str, ...]:
        """Top-level field names of the value schema (empty when it has none)."""
        if not self.value_schema:
            return ()
        return tuple(f["name"] for f in self.value_schema.get("fields", []))
