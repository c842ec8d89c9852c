"""What one SLO check concluded about one product: pass or fail, the measured value against the
objective, and where to look (the hop). Dagster-free: :mod:`mesh_assets.checks` turns it into
an ``AssetCheckResult`` / ``AssetCheckEvaluation``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Check names: the Dagster check keys, `mesh catalog` health and the docs use these.
FRESHNESS = "freshness"
LAG = "lag"
DEAD_LETTERS = "dead_letters"
SCHEMA = "schema"
LATENCY = "latency_p99"
UPSTREAM_SCHEMA = "upstream_schema"  # processors and sinks: no upstream change paused it
CHECKS = (FRESHNESS, LAG, DEAD_LETTERS, SCHEMA, LATENCY, UPSTREAM_SCHEMA)

State = Literal[
    "fresh",  # within the objective
    "idle",  # older than the objective, but nothing is waiting: the source is quiet
    "stuck",  # older than the objective and something upstream or here is not moving
    "ok",
    "over",  # measured value over the objective
    "paused",  # an upstream schema change broke what it consumes: its pipeline is paused
    "could not evaluate",  # a system did not answer: never a silent pass
]


@dataclass(frozen=True)
class Outcome:
    """One check's result. ``measured``/``objective`` share ``unit``; ``hop`` names the likely
    place of a failure (``connector <name>``, ``processor <id> (flink job <name>)``, ...)."""

    check: str
    passed: bool
    state: State
    summary: str
    measured: float | int | str | None = None
    objective: float | int | str | None = None
    unit: str = ""
    hop: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def unreachable(check: str, system: str, reason: str) -> Outcome:
    """A check whose system did not answer: failed, saying why (never passes silently)."""
    return Outcome(
        check,
        passed=False,
        state="could not evaluate",
        summary=f"could not evaluate: {system} did not answer ({reason})",
        hop=system,
    )
