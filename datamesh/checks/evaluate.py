"""The SLO checks as pure functions of the declarations and one :class:`Observed` snapshot.

- ``freshness``: the newest event time is within ``slo.freshness``; an older one passes as
  *idle* when nothing is waiting anywhere on the way from the source (connector alive and
  following the log, every job running, no input message older than the objective left
  unconsumed) and fails as *stuck* naming the first hop that is not moving.
- ``lag``: the product's consumers (Flink jobs by their group offsets, Iceberg sinks by the
  offsets their table committed) are within ``slo.max_lag`` messages; a sink is its own
  consumer. A CDC product also reports its slot lag in WAL bytes.
- ``dead_letters``: the dead-letter topic received nothing since the previous evaluation.
- ``schema``: the latest registered value schema is the declared one, or a successor the
  declared compatibility level accepts, and the subject still has that level.
- ``latency_p99``: publish time minus source commit time over the newest changes (CDC).
- ``upstream_schema`` (processors and sinks): no upstream schema change removed or retyped a
  field the product consumes; when one did, its pipeline is paused
  (:mod:`datamesh.control.pausing`) and the check fails naming the field, the change, the
  consumer and its owners, until the declaration is updated or the change reverted.

Heartbeats (:mod:`datamesh.heartbeat`): at a product downstream of (or being) a CDC product that
declares ``heartbeat:``, the newest event time includes the newest heartbeat that reached the
product's hop (its source commit time; a PostgreSQL sink is judged by its heartbeat table
alone, since its table holds no event time), ``latency_p99`` of a CDC product samples the
heartbeats too, and freshness has no *idle* pass: heartbeats must keep arriving, so an older
newest event fails as *stuck*, naming the first hop not moving or else the product's own hop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from datamesh import heartbeat, names
from datamesh.checks import schema_match
from datamesh.checks.observed import Observed
from datamesh.checks.outcome import (
    DEAD_LETTERS,
    FRESHNESS,
    LAG,
    LATENCY,
    SCHEMA,
    UPSTREAM_SCHEMA,
    Outcome,
    State,
    unreachable,
)
from datamesh.specs.product import DataProduct

STATUS_STALE_S = 15  # a connector writes its status every second from its loop; 15 s without: hung
SLOT_BEHIND_BYTES = 64 << 20  # WAL retained behind the server's position: beyond this, behind


def checks_for(p: DataProduct) -> tuple[str, ...]:
    """The checks a product gets: one per declared objective, plus dead letters and schema
    where the product has a dead-letter topic or a registered schema, and upstream schema
    where it consumes another product."""
    out = []
    if p.slo.freshness is not None:
        out.append(FRESHNESS)
    if p.slo.max_lag is not None:
        out.append(LAG)
    if dlq_topic(p) is not None:
        out.append(DEAD_LETTERS)
    if p.is_kafka_backed:
        out.append(SCHEMA)
    if p.slo.latency_p99 is not None:
        out.append(LATENCY)
    if p.kind == "processor" or p.is_sink:
        out.append(UPSTREAM_SCHEMA)
    return tuple(out)


def dlq_topic(p: DataProduct) -> str | None:
    """Where the product's bad input goes, if it has a dead-letter topic."""
    if p.kind == "processor":
        return names.dlq_topic(names.topic(p))
    if p.kind == "postgres_sink" or (p.sink is not None and p.sink.on_bad_record == "dlq"):
        return names.sink_dlq_topic(p)
    return None


def evaluate(
    products: Sequence[DataProduct],
    by_id: Mapping[str, DataProduct],
    obs: Observed,
    previous_dead_letters: Mapping[str, int],
) -> dict[str, list[Outcome]]:
    """Every applicable check of every product in ``products``, by product id."""
    ev = _Evaluation(by_id, obs)
    out: dict[str, list[Outcome]] = {}
    for p in products:
        results = []
        for check in checks_for(p):
            if check == DEAD_LETTERS:
                results.append(ev.dead_letters(p, previous_dead_letters.get(p.id)))
            else:
                results.append(getattr(ev, check)(p))
        out[p.id] = results
    return out


def _newest(a: int | None, b: int | None) -> int | None:
    return max((t for t in (a, b) if t is not None), default=None)


def newest_beat_ms(arrivals: Sequence[heartbeat.Arrival]) -> int | None:
    """Source commit time of the newest heartbeat that reached a hop (None: none did)."""
    return max((a.beat.commit_ms for a in arrivals if a.beat.commit_ms), default=None)


def heartbeat_latency(
    p: DataProduct, by_id: Mapping[str, DataProduct], obs: Observed
) -> heartbeat.HopLatency | None:
    """Per-hop and end-to-end latency of the heartbeats seen at ``p``'s hop (its own hop: from
    the arrival at its inputs; a CDC product's: from the source commit); None when no
    heartbeat-declaring source is upstream of it."""
    if not heartbeat.sources(p.id, by_id):
        return None
    here = obs.heartbeats.get(p.id, ())
    if p.kind == "cdc":
        return heartbeat.hop_latency(here, None)
    before = [a for i in p.inputs for a in obs.heartbeats.get(i, ())]
    return heartbeat.hop_latency(here, before)


def _age_text(ms: float) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _iso(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


class _Evaluation:
    """One evaluation over one snapshot (no I/O)."""

    def __init__(self, by_id: Mapping[str, DataProduct], obs: Observed) -> None:
        self.by_id, self.obs = by_id, obs

    # -- freshness ----------------------------------------------------------------------------

    def freshness(self, p: DataProduct) -> Outcome:
        assert p.slo.freshness is not None
        missing = self._unreachable(FRESHNESS, p)
        if missing is not None:
            return missing
        window = int(p.slo.freshness.total_seconds() * 1000)
        newest = self._newest_ms(p)
        sources = heartbeat.sources(p.id, self.by_id)
        details = {"newest_event_time": _iso(newest)}
        if sources:  # heartbeats must reach this hop: no idle pass (see the module docstring)
            beat = newest_beat_ms(self.obs.heartbeats.get(p.id, ()))
            details["newest_heartbeat"] = _iso(beat)
            newest = beat if p.kind == "postgres_sink" else _newest(newest, beat)
        age = None if newest is None else max(0, self.obs.now_ms - newest)
        measured = None if age is None else round(age / 1000, 1)

        def result(passed: bool, state: State, summary: str, hop: str | None = None) -> Outcome:
            return Outcome(FRESHNESS, passed, state, summary, measured, window / 1000, "seconds",
                           hop, details)  # fmt: skip

        if age is not None and age <= window:
            return result(True, "fresh", f"newest event {_age_text(age)} old")
        blocker = self._blocker(p, window)
        seen = "no event yet" if age is None else f"newest event {_age_text(age)} old"
        if blocker is None and sources:
            absent = f"no heartbeat of {', '.join(sources)} reached it within the objective"
            return result(False, "stuck", f"{seen}: {absent}", hop_of(p))
        if blocker is None:
            return result(True, "idle", f"{seen}, but nothing waits on the way from the source")
        hop, reason = blocker
        return result(False, "stuck", f"{seen}: {reason}", hop)

    def _newest_ms(self, p: DataProduct) -> int | None:
        if p.kind == "iceberg_sink":
            return self.obs.sink_event_ms.get(p.id)
        if p.kind == "postgres_sink":
            (source,) = p.inputs
            upstream = self._newest_ms(self.by_id[source])
            reader = self.obs.reader(names.topic(self.by_id[source]), p.id)
            pending = None if reader is None else reader.oldest_pending_ms
            if upstream is None or pending is None:
                return upstream
            return min(upstream, pending)  # everything before its oldest pending is written
        topic = self.obs.topics.get(names.topic(p))
        return None if topic is None else topic.newest_event_ms

    def _blocker(self, p: DataProduct, window_ms: int) -> tuple[str, str] | None:
        """The first hop from the source to ``p`` that is not moving, as (hop, reason)."""
        for source in p.inputs:
            found = self._blocker(self.by_id[source], window_ms)
            if found is not None:
                return found
        if p.kind == "cdc":
            return self._connector_blocker(p)
        for source in p.inputs:
            found = self._reader_blocker(p, names.topic(self.by_id[source]), window_ms)
            if found is not None:
                return found
        return None

    def _connector_blocker(self, p: DataProduct) -> tuple[str, str] | None:
        assert p.source is not None
        name = names.connector(p.domain, p.source.database)
        hop = f"connector {name}"
        conn = self.obs.connectors.get(name)
        status = conn.status if conn is not None else None
        if conn is None or status is None or not conn.alive:
            return hop, f"connector {name} is not running"
        # "paused": one of its tables paused (datamesh.cdc.connector), the others still flow;
        # whether it is this one is decided per table below
        if status.get("state") not in ("streaming", "paused"):
            return hop, f"connector {name} is {status.get('state')}: {status.get('error') or ''}"
        silent = self.obs.now_ms / 1000 - float(status.get("updated_at") or 0)
        if silent > STATUS_STALE_S:
            return hop, f"connector {name} has not reported for {silent:.0f} s (stopped or hung)"
        table = f"{p.source.schema}.{p.source.table}"
        paused = ((status.get("tables") or {}).get(table) or {}).get("paused")
        if paused:
            return hop, f"connector {name} paused {table}: {paused}"
        behind = int(status.get("slot_lag_bytes") or 0)
        if behind > SLOT_BEHIND_BYTES:
            return hop, f"connector {name} is {behind} bytes of WAL behind the server"
        return None

    def _reader_blocker(self, p: DataProduct, topic: str, window_ms: int) -> tuple[str, str] | None:
        reader = self.obs.reader(topic, p.id)
        hop = hop_of(p)
        if reader is None or not reader.running:
            return hop, f"{hop} is not running"
        pending = reader.oldest_pending_ms
        if pending is not None and self.obs.now_ms - pending > window_ms:
            waited = _age_text(self.obs.now_ms - pending)
            return hop, f"{hop} has not consumed {topic} messages waiting for {waited}"
        return None

    # -- lag ------------------------------------------------------------------------------------

    def lag(self, p: DataProduct) -> Outcome:
        assert p.slo.max_lag is not None
        missing = self._unreachable(LAG, p)
        if missing is not None:
            return missing
        if p.is_sink:
            (source,) = p.inputs
            topic = names.topic(self.by_id[source])
            own = self.obs.reader(topic, p.id)
            readers = [own] if own is not None else []
        else:
            topic = names.topic(p)
            readers = self.obs.readers.get(topic, [])
        for r in readers:  # a consumer whose committed offsets are unknown is not at zero
            for system in _OWN[self.by_id[r.product_id].kind]:
                if system in (GROUPS, "iceberg") and system in self.obs.errors:
                    return unreachable(LAG, system, self.obs.errors[system])
        end = self.obs.topics[topic].end if topic in self.obs.topics else {}
        lags = {r.hop: r.lag(end) for r in readers}
        details: dict[str, Any] = {"consumers": lags}
        if p.kind == "cdc":
            assert p.source is not None
            conn = self.obs.connectors.get(names.connector(p.domain, p.source.database))
            if conn is not None and conn.status is not None:
                details["slot_lag_bytes"] = int(conn.status.get("slot_lag_bytes") or 0)
        if not lags:
            return Outcome(
                LAG,
                True,
                "ok",
                "no consumer reads it yet",
                0,
                p.slo.max_lag,
                "messages",
                details=details,
            )
        hop, worst = max(lags.items(), key=lambda kv: kv[1])
        passed = worst <= p.slo.max_lag
        summary = f"{hop} is {worst} messages behind {topic}"
        return Outcome(
            LAG,
            passed,
            "ok" if passed else "over",
            summary,
            worst,
            p.slo.max_lag,
            "messages",
            hop=None if passed else hop,
            details=details,
        )

    # -- dead letters -----------------------------------------------------------------------

    def dead_letters(self, p: DataProduct, previous: int | None) -> Outcome:
        topic = dlq_topic(p)
        assert topic is not None
        if "kafka" in self.obs.errors:
            return unreachable(DEAD_LETTERS, "kafka", self.obs.errors["kafka"])
        total = self.obs.dead_letters.get(topic, 0)
        new = total - (previous or 0)
        if new < 0:  # the topic was recreated
            new = total
        details = {"dead_letters_total": total, "topic": topic}
        if new == 0:
            return Outcome(
                DEAD_LETTERS,
                True,
                "ok",
                f"no new dead letter on {topic}",
                0,
                0,
                "messages",
                details=details,
            )
        return Outcome(
            DEAD_LETTERS,
            False,
            "over",
            f"{new} new dead letters on {topic} since the last evaluation",
            new,
            0,
            "messages",
            hop=hop_of(p),
            details=details,
        )

    # -- schema -----------------------------------------------------------------------------

    def schema(self, p: DataProduct) -> Outcome:
        if "registry" in self.obs.errors:
            return unreachable(SCHEMA, "registry", self.obs.errors["registry"])
        subject = names.value_subject(names.topic(p))
        found = self.obs.subjects.get(subject)
        hop = hop_of(p)
        if found is None or found.schema is None:
            return Outcome(
                SCHEMA,
                False,
                "over",
                f"nothing registered under {subject}; materialize the product",
                hop=hop,
            )
        details = {"subject": subject, "version": found.version or 0, "level": found.level or ""}
        problems = schema_match.problems(p, found.schema, found.level)
        if problems:
            return Outcome(
                SCHEMA,
                False,
                "over",
                f"{subject} version {found.version}: " + "; ".join(problems),
                hop=f"{hop} / out of band",
                details=details,
            )
        return Outcome(
            SCHEMA,
            True,
            "ok",
            f"{subject} version {found.version} matches the declaration ({p.compatibility})",
            details=details,
        )

    # -- upstream schema ----------------------------------------------------------------------

    def upstream_schema(self, p: DataProduct) -> Outcome:
        if PLATFORM_STATE in self.obs.errors:
            return unreachable(UPSTREAM_SCHEMA, PLATFORM_STATE, self.obs.errors[PLATFORM_STATE])
        pause = self.obs.paused.get(p.id)
        if pause is None:
            return Outcome(
                UPSTREAM_SCHEMA, True, "ok", "no upstream schema change broke what it consumes"
            )
        details = {
            "input": pause.input,
            "fields": ", ".join(pause.fields),
            "change": pause.change,
            "consumer": pause.product,
            "owners": ", ".join(pause.owners),
            "savepoint": pause.savepoint or "",
            "upstream_schema_id": pause.schema_id,
        }
        return Outcome(
            UPSTREAM_SCHEMA, False, "paused", pause.describe(), hop=hop_of(p), details=details
        )

    # -- latency ----------------------------------------------------------------------------

    def latency_p99(self, p: DataProduct) -> Outcome:
        assert p.slo.latency_p99 is not None
        if "kafka" in self.obs.errors:
            return unreachable(LATENCY, "kafka", self.obs.errors["kafka"])
        objective = p.slo.latency_p99.total_seconds() * 1000
        topic = self.obs.topics.get(names.topic(p))
        sample = sorted(topic.latencies_ms) if topic is not None else []
        if not sample:
            return Outcome(
                LATENCY,
                True,
                "idle",
                "no change published yet: nothing to measure",
                None,
                objective,
                "ms",
            )
        p99 = sample[min(len(sample) - 1, math.ceil(0.99 * len(sample)) - 1)]
        passed = p99 <= objective
        return Outcome(
            LATENCY,
            passed,
            "ok" if passed else "over",
            f"p99 commit -> publish {p99} ms over the newest {len(sample)} changes",
            p99,
            objective,
            "ms",
            hop=None if passed else hop_of(p),
            details={"sample_size": len(sample), "p50_ms": sample[len(sample) // 2]},
        )

    # -- helpers ------------------------------------------------------------------------------

    def _unreachable(self, check: str, p: DataProduct) -> Outcome | None:
        for system in _systems(p, self.by_id):
            if system in self.obs.errors:
                return unreachable(check, system, self.obs.errors[system])
        return None


GROUPS = "kafka consumer groups"  # the Flink jobs' committed offsets (gather.GROUPS)
PLATFORM_STATE = "platform state"  # the pause records under MESH_HOME
_OWN = {
    "cdc": ("cdc",),
    "processor": ("flink", GROUPS),
    "postgres_sink": ("flink", GROUPS, "postgres"),
    "iceberg_sink": ("iceberg",),
}


def _systems(p: DataProduct, by_id: Mapping[str, DataProduct]) -> list[str]:
    """The systems a product's freshness is read from (its own and upstream)."""
    found = ["kafka", *_OWN[p.kind]]
    for source in p.inputs:
        found += [s for s in _systems(by_id[source], by_id) if s not in found]
    return found


def hop_of(p: DataProduct) -> str:
    """The part of the pipeline that produces ``p``."""
    if p.kind == "cdc":
        assert p.source is not None
        return f"connector {names.connector(p.domain, p.source.database)}"
    if p.kind == "iceberg_sink":
        return f"sink {p.id} (iceberg)"
    label = "processor" if p.kind == "processor" else "sink"
    return f"{label} {p.id} (flink job {names.flink_job(p)})"
