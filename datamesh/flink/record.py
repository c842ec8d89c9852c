"""The platform's own record of each Flink job's restorable state, kept under ``MESH_HOME``.

The JobManager keeps jobs, savepoints and checkpoint statistics in memory: a restart without
high availability forgets them, and finished jobs expire from its history. So every job has a
JSON file ``<MESH_HOME>/flink-jobs/<job name>.json`` (written to a temporary file, then renamed)
holding the running job's id, SQL hash and statements (to roll back to), its checkpoint directory,
and the newest savepoint and completed checkpoint the platform saw. It is updated whenever a
savepoint is taken and whenever a status read or a deployment observes a completed checkpoint.

``restore_point`` picks what a job restarts from: the newest of the recorded savepoint, the
recorded checkpoint, and — for a local checkpoint directory — the newest ``chk-<n>`` with its
``_metadata`` written (checkpoints completed after the last observation, before a crash).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from datamesh.flink.status import Checkpoint, JobStatus
from datamesh.stack.paths import flink_jobs_dir

_CHK = re.compile(r"^chk-(\d+)$")
_POINTS = ("savepoint", "checkpoint")


@dataclass(frozen=True)
class StatePoint:
    """A savepoint or retained checkpoint: where it is and when it completed."""

    path: str
    completed_at_ms: int
    savepoint: bool


@dataclass(frozen=True)
class JobRecord:
    """What the platform knows of one job name, independent of the JobManager."""

    name: str
    job_id: str | None = None
    sql_hash: str | None = None
    savepoint: StatePoint | None = None
    checkpoint: StatePoint | None = None
    checkpoint_dir: str | None = None
    statements: dict[str, Any] | None = None
    updated_at_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        """Inverse of :meth:`to_json`."""
        points = {k: StatePoint(**data[k]) if data.get(k) else None for k in _POINTS}
        return cls(**{**data, **points})


def path_of(name: str, root: Path | None = None) -> Path:
    """The record file of job ``name``."""
    return (root or flink_jobs_dir()) / f"{name}.json"


def load(name: str, root: Path | None = None) -> JobRecord | None:
    """The record of job ``name``; None when the platform never ran it."""
    path = path_of(name, root)
    if not path.exists():
        return None
    return JobRecord.from_json(json.loads(path.read_text()))


def save(record: JobRecord, root: Path | None = None) -> JobRecord:
    """Write ``record`` atomically (a crash leaves the old file or the new one, never half)."""
    path = path_of(record.name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = replace(record, updated_at_ms=int(time.time() * 1000))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("w") as f:
        json.dump(stamped.to_json(), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return stamped


def started(
    name: str,
    job_id: str,
    sql_hash: str,
    statements: dict[str, Any],
    checkpoint_dir: str | None,
    root: Path | None = None,
) -> JobRecord:
    """Record a newly started job; earlier savepoints and checkpoints stay as fallbacks."""
    old = load(name, root) or JobRecord(name)
    new = replace(
        old,
        job_id=job_id,
        sql_hash=sql_hash,
        statements=statements,
        checkpoint_dir=checkpoint_dir,
    )
    return save(new, root)


def observed(status: JobStatus, root: Path | None = None) -> JobRecord | None:
    """Record the savepoint and completed checkpoint a status read shows, when newer."""
    if status.job_id is None:
        return None
    found = load(status.name, root)
    old = found or JobRecord(status.name, status.job_id, status.sql_hash)
    new = replace(
        old,
        savepoint=_newer(old.savepoint, status.last_savepoint),
        checkpoint=_newer(old.checkpoint, status.last_checkpoint),
    )
    if new.checkpoint_dir is None and new.checkpoint and new.job_id == status.job_id:
        new = replace(new, checkpoint_dir=_parent(new.checkpoint.path))
    return save(new, root) if found is None or new != old else old


def savepoint_taken(name: str, job_id: str, path: str, root: Path | None = None) -> JobRecord:
    """Record the savepoint job ``job_id`` was just stopped with."""
    old = load(name, root) or JobRecord(name, job_id)
    point = StatePoint(path, int(time.time() * 1000), savepoint=True)
    return save(replace(old, savepoint=point), root)


def restore_point(record: JobRecord) -> StatePoint | None:
    """The newest savepoint or checkpoint of ``record`` that still exists."""
    candidates = [record.savepoint, record.checkpoint, newest_checkpoint(record.checkpoint_dir)]
    usable = [p for p in candidates if p is not None and exists(p.path)]
    return max(usable, key=lambda p: p.completed_at_ms, default=None)


def newest_checkpoint(directory: str | None) -> StatePoint | None:
    """The newest complete ``chk-<n>`` in a local checkpoint directory of one job."""
    local = _local(directory)
    if local is None or not local.is_dir():
        return None
    found = []
    for child in local.iterdir():
        match = _CHK.match(child.name)
        if match and (child / "_metadata").is_file():
            found.append((int(match.group(1)), child))
    if not found:
        return None
    _, newest = max(found)
    mtime_ms = int((newest / "_metadata").stat().st_mtime * 1000)
    return StatePoint(f"file:{newest}", mtime_ms, savepoint=False)


def exists(path: str) -> bool:
    """False only when ``path`` is local and its ``_metadata`` is gone (remote: assumed there)."""
    local = _local(path)
    return local is None or (local / "_metadata").is_file()


def _newer(old: StatePoint | None, seen: Checkpoint | None) -> StatePoint | None:
    if seen is None or not seen.path or seen.discarded:
        return old
    if old is not None and old.completed_at_ms >= seen.completed_at_ms:
        return old
    return StatePoint(seen.path, seen.completed_at_ms, seen.savepoint)


def _parent(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0]


def _local(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    return None
