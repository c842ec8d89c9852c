"""What the controller sees running: the observed half of ``plan(desired, observed)``.

Plain frozen values, so ``plan`` stays pure and table-driven tests build them by hand; gathering
them from the broker, the registry, the JobManager, the connectors and the catalogs is
:mod:`datamesh.control.observe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datamesh.control.acls import Grant
from datamesh.control.connectors import ObservedConnector
from datamesh.control.inventory import Applied
from datamesh.flink.deployed_inputs import InputSchema
from datamesh.pauses import Pause
from datamesh.topic_plan import ObservedTopic


@dataclass(frozen=True)
class ObservedSubject:
    """A registry subject: its latest version (``None`` when it has none) and its own level."""

    version: int | None
    schema: dict[str, Any] | None
    level: str | None


@dataclass(frozen=True)
class ObservedJob:
    """The newest Flink job of a name: its state (a changed declaration is told by the
    product's fingerprint in the inventory, not by asking the job)."""

    state: str

    @property
    def active(self) -> bool:
        """True while it runs or is being (re)started."""
        return self.state in ("CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING")


@dataclass(frozen=True)
class ObservedTable:
    """An Iceberg sink table: its columns and its partition fields as a declaration spells them
    (``day(updated_at)``)."""

    columns: tuple[str, ...]
    partition_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observed:
    """Everything ``plan`` compares the declarations with.

    Absent keys mean "does not exist" (a topic, a subject with no version, a job never run, a
    sink table not created). ``refusals`` holds, per subject, the registry's reasons to refuse a
    desired schema (checked against its level while observing, so ``plan`` needs no I/O).
    ``unreachable`` names systems that could not be read: their resources are not planned.
    ``acls`` is None when the cluster has no authorizer (then no ACL is planned).
    ``orphans`` are recorded connectors no declared table needs any more that still run.
    ``deployed_inputs`` (by consumer, then input), ``latest_inputs`` (by input) and ``paused``
    feed the schema controller (:mod:`datamesh.control.pausing`). ``table_columns``: each CDC
    product's source table columns (``()`` when the table does not exist; absent when its
    database could not be reached).
    """

    topics: Mapping[str, ObservedTopic] = field(default_factory=dict)
    subjects: Mapping[str, ObservedSubject] = field(default_factory=dict)
    jobs: Mapping[str, ObservedJob] = field(default_factory=dict)
    connectors: Mapping[str, ObservedConnector] = field(default_factory=dict)
    orphans: frozenset[str] = frozenset()
    deployed_inputs: Mapping[str, Mapping[str, InputSchema]] = field(default_factory=dict)
    latest_inputs: Mapping[str, InputSchema] = field(default_factory=dict)
    paused: Mapping[str, Pause] = field(default_factory=dict)
    table_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sink_tables: Mapping[str, ObservedTable] = field(default_factory=dict)
    applied: Mapping[str, Applied] = field(default_factory=dict)
    refusals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unreachable: Mapping[str, str] = field(default_factory=dict)
    acls: frozenset[Grant] | None = None
