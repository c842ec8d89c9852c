"""The input schemas each job was last deployed against, recorded by the platform.

When a processor's or ``postgres_sink``'s job is deployed, the latest registered value schema
of every input (its id, version and JSON) is written to
:func:`datamesh.endpoints.deployed_inputs_file`. The schema controller compares the inputs'
*current* latest schemas with these to decide, per consumer, whether an upstream change
propagates or breaks it (:mod:`datamesh.control.pausing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from datamesh.endpoints import deployed_inputs_file
from datamesh.state_files import read_json, write_json


@dataclass(frozen=True)
class InputSchema:
    """One input's value schema as registered when the job was deployed."""

    subject: str
    schema_id: int
    version: int
    schema: dict[str, Any]


def save(product_id: str, inputs: Mapping[str, InputSchema]) -> None:
    """Record the input schemas ``product_id``'s job now runs against (by input product id)."""
    write_json(deployed_inputs_file(product_id), {k: asdict(v) for k, v in inputs.items()})


def load(product_id: str) -> dict[str, InputSchema] | None:
    """The input schemas recorded at ``product_id``'s last deployment; None before the first."""
    data = read_json(deployed_inputs_file(product_id))
    if data is None:
        return None
    return {k: InputSchema(**v) for k, v in data.items()}
