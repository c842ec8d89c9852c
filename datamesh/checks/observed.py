"""What the checks look at, read in one pass over the real systems (:mod:`.gather`), as plain
values so that :mod:`.evaluate` is a pure function of them.

Times are epoch milliseconds. Offsets are *next* offsets per partition (Kafka's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datamesh.heartbeat import Arrival
from datamesh.pauses import Pause

Offsets = dict[int, int]


@dataclass(frozen=True)
class Topic:
    """A topic's end offsets and its newest records.

    ``newest_event_ms``: source commit time of the newest change (CDC envelope ``source.ts_ms``)
    or, for a processor's output, the newest record's Kafka timestamp (when Flink wrote it).
    ``latencies_ms``: publish time minus commit time of the newest changes (CDC topics).
    Heartbeat records are no events here: they are in :attr:`Observed.heartbeats` (but their
    commit -> publish is a latency sample).
    """

    end: Offsets
    newest_event_ms: int | None = None
    latencies_ms: tuple[int, ...] = ()


@dataclass(frozen=True)
class Reader:
    """Something that consumes a topic: a Flink job (group offsets) or an Iceberg sink (the
    offsets its table committed). ``oldest_pending_ms`` is the Kafka timestamp of the first
    message it has not consumed yet (None: nothing pending)."""

    product_id: str
    hop: str
    topic: str
    committed: Offsets
    running: bool
    oldest_pending_ms: int | None = None

    def lag(self, end: Offsets) -> int:
        """Messages between what it committed and the end of the topic."""
        return sum(max(0, o - self.committed.get(p, 0)) for p, o in end.items())


@dataclass(frozen=True)
class Connector:
    """A CDC connector's status document (:mod:`datamesh.cdc.status`) and whether its process
    is alive."""

    name: str
    status: dict[str, Any] | None
    alive: bool


@dataclass(frozen=True)
class Subject:
    """The latest registered schema of a subject and the subject's compatibility level."""

    schema: dict[str, Any] | None
    version: int | None
    level: str | None


@dataclass(frozen=True)
class Observed:
    """Everything one evaluation needs, keyed by topic / product id / connector / subject.

    ``errors`` maps a system (``kafka``, ``flink``, ``registry``, ``iceberg``, ``cdc``,
    ``postgres`` (sinks' heartbeat tables), ``platform state`` — the pause records under
    ``MESH_HOME``) to why it could not be read; the checks that need it say "could not evaluate".
    """

    now_ms: int
    topics: dict[str, Topic] = field(default_factory=dict)
    readers: dict[str, list[Reader]] = field(default_factory=dict)  # by the topic they read
    connectors: dict[str, Connector] = field(default_factory=dict)
    sink_event_ms: dict[str, int | None] = field(default_factory=dict)  # Iceberg sinks
    subjects: dict[str, Subject] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)  # DLQ topic -> messages ever
    paused: dict[str, Pause] = field(default_factory=dict)  # product id -> why it is paused
    # product id -> the synthetic heartbeats seen at its hop (its topic's newest records, an
    # Iceberg sink's newest snapshots, a PostgreSQL sink's heartbeat table)
    heartbeats: dict[str, tuple[Arrival, ...]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def reader(self, topic: str, product_id: str) -> Reader | None:
        """The reader of ``topic`` that belongs to ``product_id``."""
        return next((r for r in self.readers.get(topic, []) if r.product_id == product_id), None)
