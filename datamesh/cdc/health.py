"""Is a connector process healthy? Judged from its status file, for probes and ``mesh cdc health``.

``python -m datamesh.cdc health --status-file <path> [--ready] [--max-age-s 15] [--wait-s 0]``
exits 0 when healthy and 1 otherwise, printing why. It is what a Kubernetes exec probe or a
systemd ``ExecStartPost=`` runs (:mod:`datamesh.cdc.manifest`): it reads only the file the
connector writes (:mod:`datamesh.cdc.status`), so it needs no database, broker or declaration.

*Alive* (a liveness probe): the connector wrote a status, its state is not ``failed`` or
``stopped``, and — while it streams — the status is fresh: the loop writes it every
``--status-interval-s`` (1 s), so :data:`STALE_S` seconds of silence means a hung loop (the same
bound the SLO freshness check uses). ``starting`` and ``retrying`` write nothing while they wait
(connecting, back-off up to 30 s), so they count as alive whatever the file's age.
*Ready* (``--ready``): alive, and ``streaming`` or ``paused`` (one table paused by a schema
change; the others flow).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datamesh.cdc.status import read_status

STALE_S = 15.0
READY_STATES = frozenset({"streaming", "paused"})
WAITING_STATES = frozenset({"starting", "retrying"})  # they write no status while they wait


def judge(
    status: Mapping[str, Any] | None, now: float, *, ready: bool, max_age_s: float = STALE_S
) -> str | None:
    """Why the connector of ``status`` is not healthy at ``now`` (Unix seconds); None when it
    is (alive, and with ``ready`` also streaming). Pure."""
    if status is None:
        return "no status file yet: the connector has not started (or writes no --status-file)"
    state = str(status.get("state") or "")
    if state in ("failed", "stopped"):
        error = status.get("error")
        return f"state {state}" + (f": {error}" if error else "")
    age = now - float(status.get("updated_at") or 0)
    if state not in WAITING_STATES and age > max_age_s:
        return f"state {state}, but no status for {age:.0f}s (over {max_age_s:.0f}s): hung"
    if ready and state not in READY_STATES:
        error = status.get("error")
        return f"state {state}: not streaming yet" + (f" ({error})" if error else "")
    return None


def check(path: Path, *, ready: bool, max_age_s: float, wait_s: float) -> str | None:
    """:func:`judge` of the file at ``path``; with ``wait_s``, judged again every second until
    healthy or ``wait_s`` passed (a failed connector is not waited for)."""
    deadline = time.monotonic() + wait_s
    while True:
        status = read_status(path)
        why = judge(status, time.time(), ready=ready, max_age_s=max_age_s)
        failed = status is not None and status.get("state") in ("failed", "stopped")
        if why is None or failed or time.monotonic() >= deadline:
            return why
        time.sleep(1.0)


def main(argv: Sequence[str]) -> int:
    """``python -m datamesh.cdc health``: exit 0 when healthy, 1 otherwise (the reason printed)."""
    p = argparse.ArgumentParser(prog="python -m datamesh.cdc health")
    p.add_argument("--status-file", type=Path, required=True, help="the connector's status")
    p.add_argument("--ready", action="store_true", help="also require streaming (or paused)")
    p.add_argument(
        "--max-age-s",
        type=float,
        default=STALE_S,
        help="seconds after which a streaming connector's status means hung (15)",
    )
    p.add_argument("--wait-s", type=float, default=0.0, help="wait up to this long for health")
    a = p.parse_args(list(argv))
    why = check(a.status_file, ready=a.ready, max_age_s=a.max_age_s, wait_s=a.wait_s)
    print(f"{a.status_file}: " + ("healthy" if why is None else f"unhealthy: {why}"))
    return 0 if why is None else 1
