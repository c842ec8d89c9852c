"""``mesh up`` / ``mesh down`` / ``mesh status`` over the embedded components."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from datamesh import endpoints
from datamesh.cdc import running
from datamesh.demo import generator
from datamesh.endpoints import DAGSTER_URL_VAR, DEFAULT_DAGSTER_URL, Record, redact
from datamesh.errors import StackError
from datamesh.process import (
    alive,
    descendants,
    port_open,
    rss_kb,
    stop_pid,
    wait_until,
)
from datamesh.stack import dagster_dev, state
from datamesh.stack.component import Component
from datamesh.stack.flink import Flink
from datamesh.stack.kafka import Kafka
from datamesh.stack.paths import mesh_home
from datamesh.stack.postgres import Postgres
from datamesh.stack.registry import SchemaRegistry
from datamesh.stack.sql_gateway import SqlGateway

Progress = Callable[[str], None]
COMPONENT_TYPES: tuple[type[Component], ...] = (Kafka, Postgres, SchemaRegistry, Flink, SqlGateway)


def components(home: Path | None = None) -> list[Component]:
    """The embedded components in start order."""
    home = home or mesh_home()
    return [cls(home) for cls in COMPONENT_TYPES]


def up(progress: Progress = print) -> dict[str, Record]:
    """Start every component not already running (or external); wait until each is ready.

    A component restarted after a crash gets the ports its record names back (a line says
    so when one was taken), so the endpoints ``mesh status`` showed stay valid.
    """
    records = state.load()
    pending: list[tuple[Component, Record, float]] = []
    for comp in components():
        external = endpoints.setting(comp.env_var)
        if external:
            records[comp.name] = Record(comp.name, external, external=True)
            progress(f"{comp.name:16} external  {redact(external)} (from ${comp.env_var})")
            continue
        old = records.get(comp.name)
        if old and not old.external and _running(comp, old):
            progress(f"{comp.name:16} running   {old.endpoint}")
            continue
        if old and not old.external:
            comp.stop(old)
            comp.recorded_ports = list(old.ports)  # come back on the same addresses if free
        progress(f"{comp.name:16} starting  ...")
        records[comp.name] = comp.start()
        for note in comp.notes:
            progress(f"{comp.name:16} {note}")
        state.save(records)  # saved at once so `mesh down` can stop it even if start-up fails
        pending.append((comp, records[comp.name], time.monotonic()))
    failures: list[StackError] = []
    for comp, rec, started in pending:
        try:
            _await(comp, rec, started, records, progress)
        except StackError as exc:
            progress(f"{comp.name:16} FAILED    {exc.cause}")
            failures.append(exc)
    state.save(records)
    if failures:
        raise failures[0]
    return records


def _await(
    comp: Component, rec: Record, started: float, records: dict[str, Record], progress: Progress
) -> None:
    try:
        wait_until(
            comp.name,
            lambda: comp.ready(rec.endpoint),
            comp.deadline_s,
            Path(rec.log),
            rec.pids[0] if rec.pids else None,
            comp.fix,
        )
    except StackError:
        comp.stop(rec)
        records.pop(comp.name, None)
        state.save(records)
        raise
    if isinstance(comp, Postgres):
        rec.pids = [pid for pid in [comp.postmaster_pid()] if pid]
    progress(f"{comp.name:16} ready     {rec.endpoint} ({time.monotonic() - started:.1f}s)")


def _running(comp: Component, rec: Record) -> bool:
    return bool(rec.pids) and all(alive(p) for p in rec.pids) and comp.ready(rec.endpoint)


def down(progress: Progress = print) -> list[str]:
    """Stop every component ``mesh up`` started (external ones are left alone).

    Returns the ports that still accept connections afterwards (empty on success).
    """
    records = state.load()
    by_name = {c.name: c for c in components()}
    # Clients first: connectors drain and confirm to their slots while Kafka and Postgres run.
    # The demo's writer goes before dagster: `mesh dev` started it and then became `dagster dev`,
    # so it is in dagster's process tree, whose leftovers dagster_dev.stop kills unannounced.
    pid = generator.stop()
    if pid:
        progress(f"{'demo generator':16} stopped   pid {pid}")
    dagster_dev.stop(progress)
    for name in running.stop_all():
        progress(f"{name:16} stopped   (CDC connector)")
    for name in reversed(list(records)):
        rec = records[name]
        if rec.external:
            continue
        progress(f"{name:16} stopping  pids {rec.pids}")
        by_name[name].stop(rec)
        for pid in rec.pids:
            stop_pid(pid)
    leftovers = [
        f"{n}:{p}" for n, r in records.items() if not r.external for p in r.ports if port_open(p)
    ]
    state.save({})
    return leftovers


def status() -> dict[str, Any]:
    """Endpoints (None where not running) plus per-component health, PIDs and RSS."""
    records = state.load()
    out: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    for comp in components():
        endpoint = endpoints.setting(comp.env_var) or (
            records[comp.name].endpoint if comp.name in records else None
        )
        healthy = bool(endpoint) and comp.ready(endpoint or "")
        out[comp.status_key] = redact(endpoint) if healthy and endpoint else None
        rec = records.get(comp.name)
        for key, value in (rec.extra if rec and healthy else {}).items():
            out[f"{comp.name}_{key}"] = value
        pids = rec.pids if rec else []
        detail[comp.name] = {
            "healthy": healthy,
            "external": bool(endpoints.setting(comp.env_var)),
            "pids": pids,
            "rss_mb": round(sum(rss_kb([p, *descendants(p)]) for p in pids) / 1024, 1),
        }
    dagster = (
        endpoints.setting(DAGSTER_URL_VAR) or dagster_dev.recorded_url() or DEFAULT_DAGSTER_URL
    )
    out["dagster_url"] = dagster if _http_ok(f"{dagster}/server_info") else None
    out["dagster_home"] = str(dagster_dev.dagster_home())
    out["components"] = detail
    return out


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
