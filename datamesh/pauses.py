"""Paused pipelines: the platform's record of each product whose job an upstream schema change
stopped, one JSON file per product (:func:`datamesh.endpoints.pause_file`).

A pause names what broke and whom to tell — the upstream product and its fields, the change,
the consumer and its owners — and the savepoint the job was stopped with, which the resume
restores so that every change made meanwhile is processed. While the file exists, deploying
the product (the Dagster asset, ``mesh flink deploy``) leaves its job stopped, and its
``upstream_schema`` check fails. The controller (:mod:`datamesh.control.pausing`) writes and
removes it; everyone else only reads it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from datamesh.endpoints import pause_file, paused_dir
from datamesh.state_files import read_json, write_json


@dataclass(frozen=True)
class Pause:
    """Why ``product``'s pipeline is paused and where its state is.

    ``input``: the upstream product whose registered schema changed (``schema_id`` is that
    schema); ``fields``: the consumed fields removed or retyped; ``change``: the change in
    words; ``savepoint``: None until the job has been stopped.
    """

    product: str
    input: str
    fields: tuple[str, ...]
    change: str
    owners: tuple[str, ...]
    declared_in: str
    schema_id: int
    savepoint: str | None = None
    paused_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def describe(self) -> str:
        """One sentence for checks, logs and the plan."""
        owners = ", ".join(self.owners) or "-"
        stopped = f"stopped with savepoint {self.savepoint}" if self.savepoint else "stopping"
        return (
            f"{self.change} breaks {self.product} (consumes {', '.join(self.fields)}; "
            f"owners {owners}): its pipeline is paused ({stopped}); it resumes from there once "
            f"{self.declared_in} no longer uses {', '.join(self.fields)} or the change to "
            f"{self.input} is reverted"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pause:
        """Inverse of :meth:`to_json`."""
        return cls(**{**data, "fields": tuple(data["fields"]), "owners": tuple(data["owners"])})


def save(pause: Pause) -> None:
    """Record ``pause`` (atomically; replaces an earlier record of the product)."""
    write_json(pause_file(pause.product), pause.to_json())


def load(product_id: str) -> Pause | None:
    """The pause of ``product_id``; None when its pipeline is not paused."""
    data = read_json(pause_file(product_id))
    return None if data is None else Pause.from_json(data)


def remove(product_id: str) -> None:
    """Forget the pause of ``product_id`` (nothing when there is none)."""
    pause_file(product_id).unlink(missing_ok=True)


def all_paused() -> dict[str, Pause]:
    """Every recorded pause, by product id."""
    root = paused_dir()
    if not root.is_dir():
        return {}
    found = (load(path.stem) for path in sorted(root.glob("*.json")))
    return {p.product: p for p in found if p is not None}
