"""The YAML shape of a domain's ``products.yaml``, validated by pydantic.

These models only check the shape of one file. Cross-file rules (unknown inputs, name
collisions, cycles) live in :mod:`datamesh.specs.rules`, and the resolved, immutable product is
:class:`datamesh.specs.product.DataProduct`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datamesh.specs.durations import parse_duration, retention_ms
from datamesh.specs.processors import ProcessorDecl

Kind = Literal["cdc", "processor", "iceberg_sink", "postgres_sink"]
SinkMode = Literal["upsert", "append"]
OnBadRecord = Literal["fail", "dlq"]
Access = Literal["public", "internal", "private"]
Compatibility = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]
CleanupPolicy = Literal["delete", "compact", "compact,delete"]
OnIncompatible = Literal["from-offsets", "reprocess", "fail"]
Repair = Literal["manual", "auto"]

NAME = r"^[a-z][a-z0-9_]*$"
_OWNER = re.compile(r"^(team:[a-z0-9][a-z0-9_-]*|[^@\s]+@[^@\s]+\.[a-z]{2,})$")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _check_owners(owners: list[str]) -> list[str]:
    for owner in owners:
        if not _OWNER.match(owner):
            raise ValueError(
                f"owner {owner!r} is neither an email address nor team:<name> "
                "(lowercase letters, digits, - and _)"
            )
    return owners


class SloDecl(_Strict):
    """Service level objectives: data no older than ``freshness``, consumers within ``max_lag``
    messages, source commit -> output under ``latency_p99`` (CDC products)."""

    freshness: str | None = None
    max_lag: int | None = Field(default=None, ge=0)
    latency_p99: str | None = None

    @field_validator("freshness", "latency_p99")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class AuditDecl(_Strict):
    """An audit schedule of a sink: compare it with its CDC source ``every`` so often (at
    least a minute; the sink must be auditable, see ``mesh validate``)."""

    every: str

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        if parse_duration(value).total_seconds() < 60:
            raise ValueError(f"audit every {value!r} is too often; audit at most once a minute")
        return value


class TopicDecl(_Strict):
    """Kafka topic settings of a Kafka-backed product."""

    partitions: int = Field(default=1, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1, le=7)
    retention: str = "7d"
    cleanup_policy: CleanupPolicy | None = None

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        retention_ms(value)
        return value


class HeartbeatDecl(_Strict):
    """Synthetic heartbeat events of a CDC product (:mod:`datamesh.heartbeat`): one every
    ``every`` (1 s to 1 h) through the connector, the topic and every job and sink downstream."""

    every: str

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        seconds = parse_duration(value).total_seconds()
        if not 1 <= seconds <= 3600:
            raise ValueError(f"heartbeat every {value!r} must be between 1s and 1h")
        return value


class SourceDecl(_Strict):
    """Where a CDC product reads from: a database and a ``schema.table``."""

    database: str = Field(pattern=NAME)
    table: str

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError(f"table {value!r} must be written schema.table, e.g. public.movies")
        return value


class FlinkDecl(_Strict):
    """Runtime settings of a processor's Flink job."""

    parallelism: int = Field(default=1, ge=1, le=64)
    checkpoint_interval: str = "10s"
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    changelog_mode: Literal["upsert", "all"] = "upsert"
    on_incompatible: OnIncompatible = "from-offsets"

    @field_validator("checkpoint_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_duration(value)
        return value


class SinkDecl(_Strict):
    """Where and how a sink writes its input.

    ``mode``: ``upsert`` (latest row per key; the default when the input has a key) or
    ``append`` (every change a row, with its op, LSN and event time: a change-log table).
    ``partition_by``: Iceberg partition fields: ``col``, ``day(col)``, ``bucket(n, col)`` (also
    ``year``/``month``/``hour`` and ``truncate(w, col)``). ``on_bad_record``: ``fail`` (the run
    fails naming topic, partition and offset, nothing is written) or ``dlq`` (the record goes to
    the sink's dead-letter topic with the error in its headers). ``database``/``table``: the
    PostgreSQL target of a ``postgres_sink`` (default: database ``serving``, table
    ``public.<product>``).
    """

    mode: SinkMode | None = None
    partition_by: list[str] = Field(default_factory=list)
    on_bad_record: OnBadRecord = "fail"
    database: str | None = Field(default=None, pattern=NAME)
    table: str | None = None

    @field_validator("table")
    @classmethod
    def _qualified(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE.match(value):
            raise ValueError(f"table {value!r} must be written schema.table, e.g. public.titles")
        return value


class ProductDecl(_Strict):
    """One data product as a domain team writes it.

    ``access``: ``public`` (any domain may read it), ``internal`` (its own domain and the domains
    in ``allow``), ``private`` (its own domain only). ``retired: true`` plans the teardown of
    everything the product runs. ``repair: auto`` lets the drift sensor apply safe repairs.
    ``audit: {every: 1h}`` audits a sink against its CDC source on that schedule.
    """

    name: str = Field(pattern=NAME, max_length=100)
    kind: Kind
    description: str = Field(min_length=1)
    owners: list[str] | None = None
    access: Access = "internal"
    allow: list[str] = Field(default_factory=list)
    tier: int = Field(default=2, ge=1, le=3)
    slo: SloDecl | None = None
    heartbeat: HeartbeatDecl | None = None
    schema_file: str | None = Field(default=None, alias="schema")
    key: list[str] = Field(default_factory=list)
    source: SourceDecl | None = None
    inputs: list[str] = Field(default_factory=list)
    sql: str | None = None
    consumes: dict[str, list[str]] = Field(default_factory=dict)
    topic: TopicDecl = Field(default_factory=TopicDecl)
    compatibility: Compatibility = "BACKWARD"
    tags: dict[str, str] = Field(default_factory=dict)
    processor: ProcessorDecl | None = None
    flink: FlinkDecl = Field(default_factory=FlinkDecl)
    sink: SinkDecl | None = None
    retired: bool = False
    repair: Repair = "manual"
    audit: AuditDecl | None = None

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not re.match(NAME, domain):
                raise ValueError(f"allow lists domain names; {domain!r} is not one")
        return value

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str] | None) -> list[str] | None:
        return _check_owners(value) if value is not None else None


class DomainDecl(_Strict):
    """A domain's ``products.yaml``: who owns it and the products it declares."""

    domain: str = Field(pattern=NAME, max_length=60)
    owners: list[str] = Field(min_length=1)
    description: str = ""
    products: list[ProductDecl] = Field(min_length=1)

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return _check_owners(value)
