"""Drift, product by product: what the drift sensor and the ``drift`` check report, and which
repairs it may apply by itself. Pure functions of a plan.

A product is in drift when ``plan`` has any action for it: a resource missing or changed out
of band (a topic's config edited, a job cancelled, a connector stopped, a table gone), a
declaration not applied yet, or a refusal. Only products declaring ``repair: auto`` are repaired
by the sensor, and only with **safe** actions: creating what is missing, restarting what stopped,
re-applying a changed declaration, and setting a drifted topic config back. Deletions,
retirements and refusals always wait for a human (``mesh apply``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datamesh.control.actions import Action
from datamesh.specs.product import DataProduct


@dataclass(frozen=True)
class Verdict:
    """The drift of one product: whether it matches its declaration, and why not."""

    product: str
    in_sync: bool
    lines: tuple[str, ...]

    @property
    def summary(self) -> str:
        """One sentence for the check's description."""
        if self.in_sync:
            return "running resources match the declaration"
        n = len(self.lines)
        return f"{n} difference{'s' if n != 1 else ''} with the declaration: {self.lines[0]}"


def verdicts(products: Sequence[DataProduct], actions: Sequence[Action]) -> list[Verdict]:
    """One verdict per declared, live product (a connector action counts for the products whose
    table it concerns)."""
    out = []
    for p in products:
        if p.retired:
            continue
        mine = [a.describe() for a in actions if a.product == p.id]
        out.append(Verdict(p.id, not mine, tuple(mine)))
    return out


def safe(action: Action) -> bool:
    """True for an action the sensor may apply by itself (see the module docstring)."""
    if action.verb in ("create", "update") and not action.gate:
        return action.resource != "product"
    return action.verb == "drift" and action.gate == "repair" and bool(action.params)


def repairs(products: Mapping[str, DataProduct], actions: Sequence[Action]) -> list[Action]:
    """The safe actions of products declaring ``repair: auto``, in plan order."""
    return [
        a
        for a in actions
        if a.product in products and products[a.product].repair == "auto" and safe(a)
    ]
