"""The connector's status file: one JSON document, replaced atomically, for supervisors.

Fields: ``connector``, ``pid``, ``state`` (:data:`State`), ``slot``, ``database``,
``started_at``/``updated_at`` (Unix seconds), ``last_lsn`` (last received), ``confirmed_lsn``
(last confirmed to the slot), ``slot_lag_bytes`` (WAL the slot retains behind the server's
current position), ``events_sent``, ``events_acked``, ``in_flight``, ``tables`` (topic, events,
paused reason), ``snapshot`` (per table: status, rows_done, total_estimate, where),
``retries`` and ``error`` (the last error, with its fix).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

State = Literal["starting", "streaming", "paused", "retrying", "stopped", "failed"]


@dataclass
class Status:
    """What a supervisor needs to know about one connector process."""

    connector: str
    slot: str
    database: str
    pid: int = field(default_factory=os.getpid)
    state: State = "starting"
    started_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    last_lsn: str | None = None
    confirmed_lsn: str | None = None
    slot_lag_bytes: int | None = None
    events_sent: int = 0
    events_acked: int = 0
    in_flight: int = 0
    tables: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    error: str | None = None


def write_status(path: Path | None, status: Status) -> None:
    """Replace ``path`` with ``status`` (write then rename: readers never see half a file)."""
    if path is None:
        return
    status.updated_at = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(status), indent=2, default=str))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status written to ``path``; None if there is none yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None
