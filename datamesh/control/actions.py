"""The controller's vocabulary: one :class:`Action` per change to one resource, with its impact.

Every planner (topics, subjects, connectors, Flink jobs, sink tables, ACLs, retirements) returns
``Action`` values, so ``mesh plan`` prints, orders and gates them the same way and ``mesh apply``
dispatches each to the component that owns its resource. Actions are plain frozen data: they
can be compared in table-driven tests and printed as JSON.

``verb`` says what apply would do:

- ``create`` / ``update`` / ``delete`` / ``pause`` / ``resume`` — a change apply carries out;
- ``drift`` — the resource differs from its declaration in a way the platform does not fix by
  itself (reported; ``repair`` actions are applied only with ``mesh apply --repair`` or a
  declared ``repair: auto``);
- ``refuse`` — the change is unsafe; a plan with any refusal changes nothing at all;
- ``in_sync`` — nothing to do (shown with ``mesh plan --all``).

``gate`` names the flag apply needs before it carries the action out (``allow_delete`` for
topic deletion, ``repair`` for drift repairs); an ungated action is safe to apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Resource = Literal[
    "subject",
    "topic",
    "dlq_topic",
    "connector",
    "sink_table",
    "flink_job",
    "acl",
    "product",
]
Verb = Literal["create", "update", "delete", "pause", "resume", "drift", "refuse", "in_sync"]
Gate = Literal["", "allow_delete", "repair"]
Effect = Literal["breaks", "pauses", "updates", "reads"]

# Order of resources inside one product: what a pipeline needs exists before what uses it
# (schemas before the topic a connector or job writes, tables before the job that fills them).
RESOURCE_ORDER: tuple[Resource, ...] = (
    "product",
    "subject",
    "topic",
    "dlq_topic",
    "acl",
    "connector",
    "sink_table",
    "flink_job",
)
CHANGES: frozenset[str] = frozenset({"create", "update", "delete", "pause", "resume"})


@dataclass(frozen=True)
class Affected:
    """A downstream product an action touches: which of its fields, how, and who owns it."""

    product: str
    owners: tuple[str, ...]
    effect: Effect
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        """``breaks studio.movie_catalog (consumes status; owner team:studio-eng)``."""
        uses = f"consumes {', '.join(self.fields)}; " if self.fields else ""
        owner = "owners " if len(self.owners) > 1 else "owner "
        return f"{self.effect} {self.product} ({uses}{owner}{', '.join(self.owners) or '-'})"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "product": self.product,
            "owners": list(self.owners),
            "effect": self.effect,
            "fields": list(self.fields),
        }


@dataclass(frozen=True)
class Action:
    """One change to one resource of one product.

    ``name`` is the resource's own name (topic, subject, connector, job, table, ACL);
    ``detail`` is the human half of the plan line; ``params`` is what apply needs (JSON-able);
    ``impact`` lists the downstream products it affects.
    """

    product: str
    resource: Resource
    name: str
    verb: Verb
    detail: str
    params: Mapping[str, Any] = field(default_factory=dict)
    gate: Gate = ""
    impact: tuple[Affected, ...] = ()

    @property
    def changes(self) -> bool:
        """True when apply would change something (not drift, refusal or in-sync)."""
        return self.verb in CHANGES

    @property
    def breaks(self) -> bool:
        """True when a downstream consumer would break (``mesh plan --exit-code`` returns 2)."""
        return self.verb == "refuse" or any(a.effect == "breaks" for a in self.impact)

    def describe(self) -> str:
        """One plan line, with its impact after an arrow."""
        gate = f" [needs --{self.gate.replace('_', '-')}]" if self.gate else ""
        line = f"{self.verb.upper():8} {self.resource} {self.name}: {self.detail}{gate}"
        if not self.impact:
            return line
        # a consumer an upstream change breaks is paused by the schema controller
        paused = sum(1 for a in self.impact if a.effect in ("pauses", "breaks"))
        tail = "; ".join(a.describe() for a in self.impact)
        if paused:
            tail += f"; pauses {paused} pipeline{'s' if paused > 1 else ''}"
        return f"{line} → {tail}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form (``mesh plan --json``)."""
        return {
            "product": self.product,
            "resource": self.resource,
            "name": self.name,
            "verb": self.verb,
            "detail": self.detail,
            "params": dict(self.params),
            "gate": self.gate,
            "impact": [a.to_json() for a in self.impact],
        }
