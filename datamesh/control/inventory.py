"""What the controller applied: one JSON record per product under ``<MESH_HOME>/control/applied``.

The record is how the controller knows a product it created is no longer declared (its resources
are torn down by a retirement plan), which declaration it last applied (its fingerprint), and
what consumers read when the product was applied. Written atomically after every resource of the
product was applied; read by ``plan``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from datamesh import endpoints
from datamesh.control.desired import DesiredProduct, desired
from datamesh.specs.product import DataProduct


@dataclass(frozen=True)
class Applied:
    """The resources one applied product runs on, and the declaration they came from."""

    product: str
    kind: str
    fingerprint: str
    owners: tuple[str, ...]
    inputs: tuple[str, ...]
    topic: str | None
    dlq: str | None
    subjects: tuple[str, ...]
    job: str | None
    connector: str | None
    source_table: str | None
    sink_table: str | None
    database: str | None = None

    @classmethod
    def of(cls, d: DesiredProduct) -> Applied:
        """The record of ``d`` once applied."""
        p = d.product
        return cls(
            product=p.id,
            kind=p.kind,
            fingerprint=d.fingerprint,
            owners=p.owners,
            inputs=p.inputs,
            topic=d.topic,
            dlq=d.dlq,
            subjects=tuple(s.subject for s in d.subjects),
            job=d.job,
            connector=d.connector,
            source_table=d.source_table,
            sink_table=d.sink_table,
            database=p.source.database if p.source else None,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Applied:
        """Inverse of ``asdict``."""

        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            product=str(data["product"]),
            kind=str(data["kind"]),
            fingerprint=str(data["fingerprint"]),
            owners=tuple(data.get("owners") or ()),
            inputs=tuple(data.get("inputs") or ()),
            topic=opt("topic"),
            dlq=opt("dlq"),
            subjects=tuple(data.get("subjects") or ()),
            job=opt("job"),
            connector=opt("connector"),
            source_table=opt("source_table"),
            sink_table=opt("sink_table"),
            database=opt("database"),
        )


def directory(root: Path | None = None) -> Path:
    """Where the records live."""
    return (root or endpoints.control_dir()) / "applied"


def load_all(root: Path | None = None) -> dict[str, Applied]:
    """Every recorded product by id (an unreadable record is skipped: it is rewritten by the
    next apply of that product)."""
    out: dict[str, Applied] = {}
    folder = directory(root)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            rec = Applied.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        out[rec.product] = rec
    return out


def save(rec: Applied, root: Path | None = None) -> None:
    """Write ``rec`` atomically (nothing when the file already says the same)."""
    folder = directory(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rec.product}.json"
    text = json.dumps(asdict(rec), indent=2, sort_keys=True)
    try:
        if path.read_text() == text:
            return  # unchanged: a no-op apply writes nothing
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def forget(product_id: str, root: Path | None = None) -> None:
    """Remove the record of a retired product."""
    (directory(root) / f"{product_id}.json").unlink(missing_ok=True)


def record(product: DataProduct, products: Sequence[DataProduct], root: Path | None = None) -> None:
    """Record ``product`` as applied: its asset materialized (the Dagster assets create the same
    resources through the same functions as ``mesh apply``), so ``plan`` knows it from then on."""
    by_id = {p.id: p for p in products}
    save(Applied.of(desired(product, by_id)), root)
