"""The demo's data generator: a background process that keeps changing the demo databases.

``mesh demo [--rate 5/s]`` starts it (``python -m datamesh.demo``), ``mesh demo --stop`` and
``mesh down`` stop it. Its files are in ``<MESH_HOME>/demo/``: ``generator.json`` (pid, rate,
log), ``generator.log`` (a progress line every :data:`PROGRESS_S` seconds) and
``status.json`` (the counts so far, rewritten with each progress line).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2

from datamesh import endpoints
from datamesh.demo import writer
from datamesh.demo.changes import Change, Live, due_schema_change, next_change
from datamesh.endpoints import mesh_home
from datamesh.process import alive, spawn, stop_pid
from datamesh.state_files import read_json, write_json

PROGRESS_S = 10.0
TICK_S = 0.2  # changes due within a tick are written together (one transaction per database)
DEFAULT_SCHEMA_EVERY_S = 600.0


def home() -> Path:
    """``<MESH_HOME>/demo``."""
    return mesh_home() / "demo"


def info() -> dict[str, Any] | None:
    """The running generator's record (pid, rate, log, started) with its last ``status``;
    None when none runs."""
    record = read_json(home() / "generator.json")
    if not isinstance(record, dict) or not alive(int(record.get("pid") or 0)):
        return None
    return {**record, "status": read_json(home() / "status.json") or {}}


def start(rate: str, per_second: float, schema_every_s: float) -> dict[str, Any]:
    """Start the generator in the background (a running one is stopped first, so the new rate
    applies); its record."""
    stop()
    log = home() / "generator.log"
    argv = [sys.executable, "-m", "datamesh.demo", "--rate", rate]
    pid = spawn([*argv, "--schema-every", str(schema_every_s)], log)
    record = {"pid": pid, "rate": rate, "per_second": per_second, "log": str(log)}
    write_json(home() / "generator.json", {**record, "started": time.time()})
    (home() / "status.json").unlink(missing_ok=True)
    return record


def stop() -> int | None:
    """Stop the running generator (SIGTERM, it finishes its transaction); its pid, or None
    when none ran."""
    record = read_json(home() / "generator.json")
    pid = int(record.get("pid") or 0) if isinstance(record, dict) else 0
    (home() / "generator.json").unlink(missing_ok=True)
    if not alive(pid):
        return None
    stop_pid(pid, timeout=15)
    return pid


def run(per_second: float, schema_every_s: float, out: Callable[[str], None] = print) -> None:
    """Write ``per_second`` changes a second to the demo databases until SIGTERM/SIGINT,
    printing a progress line every :data:`PROGRESS_S` seconds. A batch the database refuses
    (someone else changed the rows meanwhile) is rolled back and the live ids read again."""
    stopping: list[int] = []

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    conns = writer.connect(endpoints.endpoint("postgres"))
    live = writer.load_live(conns)
    rng, counts, attempted = random.Random(), Counter[str](), 0
    started = last_progress = time.monotonic()
    out(f"generating {per_second:g} changes/s into {', '.join(writer.DATABASES)}")
    while not stopping:
        now = time.monotonic()
        schema = due_schema_change(now - started, schema_every_s, live.columns)
        if schema is not None:
            writer.add_column(conns, schema)
            live.columns |= {schema.name}
            counts["schema changes"] += 1
            out(f"schema change: ALTER TABLE {schema.table} ADD COLUMN {schema.column}")
        due = int((now - started) * per_second) - attempted
        # at most 5 s of changes at once: a writer that fell behind catches up gradually
        batch = _batch(rng, live, max(0, min(due, int(per_second * 5) + 1)))
        attempted += len(batch)
        try:
            writer.apply(conns, batch)
        except psycopg2.Error as exc:
            out(f"batch of {len(batch)} refused ({exc.pgcode}): reading the tables again")
            live = writer.load_live(conns)
            counts["refused"] += len(batch)
        else:
            counts.update(c.op for c in batch)
        if now - last_progress >= PROGRESS_S:
            last_progress = now
            _progress(counts, now - started, out)
        time.sleep(TICK_S)
    _progress(counts, time.monotonic() - started, out)
    for conn in conns.values():
        conn.close()


def _batch(rng: random.Random, live: Live, size: int) -> list[Change]:
    today = dt.date.today()
    batch = []
    for _ in range(size):
        change = next_change(rng, live, today)
        live.record(change)
        batch.append(change)
    return batch


def _progress(counts: Counter[str], elapsed_s: float, out: Callable[[str], None]) -> None:
    written = sum(counts[op] for op in ("insert", "update", "delete"))
    status = {"elapsed_s": round(elapsed_s, 1), "changes": written, **counts}
    write_json(home() / "status.json", status)
    out(
        f"{time.strftime('%H:%M:%S')} {written} changes in {elapsed_s:.0f}s "
        f"({written / max(elapsed_s, 1e-9):.1f}/s): "
        + ", ".join(f"{counts[k]} {k}s" for k in ("insert", "update", "delete"))
        + f", {counts['schema changes']} schema changes, {counts['refused']} refused"
    )
