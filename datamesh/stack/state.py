"""``state.json``: the records of what ``mesh up`` started, read by status, down and resources."""

from __future__ import annotations

import json
import os
from pathlib import Path

from datamesh.stack.component import Record
from datamesh.stack.paths import state_file


def load(path: Path | None = None) -> dict[str, Record]:
    """Records by component name; empty when nothing was started."""
    path = path or state_file()
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: Record.from_json(rec) for name, rec in data.get("components", {}).items()}


def save(records: dict[str, Record], path: Path | None = None) -> None:
    """Write the records atomically (rename), so a crash never leaves half a file."""
    path = path or state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"components": {n: r.to_json() for n, r in records.items()}}, indent=2)
    )
    os.replace(tmp, path)
