"""Carry out connector actions: start a connector, add and remove tables, re-snapshot after drift.

**Adding a table to a running connector** (``update {"add": [t]}``), under the connector's
lock, with no manual step and no gap:

1. refuse what the connector could not capture (no table, no primary key, identity NOTHING)
   before anything changes;
2. ``ALTER PUBLICATION ... ADD TABLE t``;
3. wait until every transaction open at that moment has ended
   (:func:`datamesh.cdc.publication.wait_for_writers`);
4. record a DBLog snapshot request for ``t`` (a connector that does not capture ``t`` leaves
   it pending);
5. restart the supervised connector with ``t`` in its tables: it resumes from its slot, streams
   ``t``'s changes from the ALTER on, and snapshots ``t`` chunk by chunk between watermarks.

Why this closes every gap: pgoutput publishes a change only if the table was in the publication
*as of that change* (decoding reads the catalog through a historic snapshot), so the stream
holds every change of ``t`` committed after the ALTER by transactions that began after it, and
nothing from before. The snapshot starts after step 3, so its first chunk reads every change
committed before — including those of transactions that straddled the ALTER, which pgoutput
would skip. From the low watermark on, the stream carries every change of ``t``, and DBLog's
window drops from each chunk the rows the stream changed meanwhile, so for every key the last
event on the topic is the table's latest row. The other tables lose nothing: the stopped
connector confirmed only what Kafka holds, and the new one replays the slot from there
(at-least-once, order per key kept).

**Why restart and not signal the running process**: the tables are part of the connector's
command (``command.json``, which its supervisor re-runs after a crash), so a restart keeps one
truth about what runs — a signal would need a second channel for the table list, a supervisor
that restarts a crashed connector with the new list, and tables, codecs, topics and the
snapshot runner swapped inside an open replication session. A restart costs a few seconds of
latency, never data (the slot holds what was not confirmed), and pgoutput behaves the same
either way: which changes of ``t`` are streamed is decided by the WAL position of the ALTER,
not by when the walsender started.

**Removing a table** (``update {"remove": [t]}``): ``ALTER PUBLICATION ... DROP TABLE t``, its
snapshot request forgotten, the connector restarted without ``t``. Its topic stays until the
product is retired.

**Re-snapshot** (``drift`` with ``{"repair": "resnapshot"}``, only with ``repair=True``): the
connector is stopped, its slot, publication and state dropped, and it starts as on its first
day: publication, slot, and a DBLog snapshot of every table. Consumers see every row again as
``r`` (at-least-once), and nothing is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from datamesh.cdc import publication, running, setup
from datamesh.cdc import snapshot_store as store
from datamesh.cdc.catalog import connect, one, publication_tables
from datamesh.cdc.config import ConnectorConfig
from datamesh.cdc.errors import PublicationError
from datamesh.control.actions import Action
from datamesh.control.connectors import (
    ConnectorSpec,
    ProductOfTable,
    observe_connector,
    plan_connector,
)
from datamesh.errors import TerminalError, TransientError
from datamesh.polling import poll

SLOT_RELEASE_S = 30.0


def apply_connector(
    action: Action, cfg: ConnectorConfig, *, repair: bool = False, timeout_s: float = 90.0
) -> dict[str, Any]:
    """Carry out one action of :func:`~datamesh.control.connectors.plan_connector`; its status.

    ``cfg`` is the desired configuration (``connectors.config(spec, ...)``: its ``tables`` are
    the declared ones). Idempotent: what is already done is skipped (a second apply of an
    ``update`` neither restarts the connector nor snapshots again). A ``repair``-gated action
    needs ``repair=True``. Returns the connector's status document (``{}`` while it is not
    running: an ``update`` of a stopped connector changes the source only, and its ``create``
    starts it).
    """
    if action.resource != "connector" or action.name != cfg.name:
        raise ValueError(f"not an action of connector {cfg.name}: {action.describe()}")
    if action.gate == "repair" and not repair:
        raise TerminalError(
            f"connector {cfg.name}: {action.detail}",
            fix="apply with --repair (or declare repair: auto) to repair it",
        )
    params = action.params
    if action.verb == "create":
        if not running.supervised(cfg.name):  # its publication holds exactly what it will capture
            _change_tables(cfg, cfg.tables, (), timeout_s, exact=True)
        return running.ensure_running(cfg, timeout_s)
    if action.verb in ("update", "drift") and ("add" in params or "remove" in params):
        return _change_tables(
            cfg, tuple(params.get("add", ())), tuple(params.get("remove", ())), timeout_s
        )
    if action.verb == "drift" and params.get("repair") == "resnapshot":
        return _resnapshot(cfg, timeout_s)
    if action.verb == "in_sync":
        return running.status(cfg.name) or {}
    raise ValueError(f"connector actions do not include: {action.describe()}")


def converge(
    spec: ConnectorSpec,
    cfg: ConnectorConfig,
    product_of_table: ProductOfTable,
    *,
    repair: bool = False,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """Observe, plan and apply ``spec``'s connector until it follows exactly its declared tables
    and streams; its status. What a CDC asset's materialization and ``mesh cdc start`` run.

    Drift is not repaired unless ``repair``: it raises :class:`TerminalError` naming it.
    Updates are applied together (one restart however many tables change).
    """
    actions = plan_connector(spec, observe_connector(spec, cfg.dsn), product_of_table)
    drift = [a for a in actions if a.verb == "drift"]
    if drift and not repair:
        raise TerminalError(
            f"connector {spec.name} drifted: " + "; ".join(a.detail for a in drift),
            fix="mesh apply --repair, or declare repair: auto on the product",
        )
    for action in batch(actions):
        apply_connector(action, cfg, repair=repair, timeout_s=timeout_s)
    _follow_heartbeats(cfg, timeout_s)
    return running.ensure_running(cfg, timeout_s)


def _follow_heartbeats(cfg: ConnectorConfig, timeout_s: float) -> None:
    """Restart a running connector whose ``--heartbeat`` list is not the declared one (the list
    is part of its command, like its tables)."""
    with running.locked(cfg.name, timeout_s + 60):
        started = running.heartbeats(cfg.name)
        if not running.supervised(cfg.name) or started is None or started == cfg.heartbeats:
            return
        tables = running.captured(cfg.name) or cfg.tables
        beats = tuple(b for b in cfg.heartbeats if b[0] in tables)
        running.stop_held(cfg.name)
        running.start_held(dataclasses.replace(cfg, tables=tables, heartbeats=beats), timeout_s)


def retire_connector(cfg: ConnectorConfig, timeout_s: float = 90.0) -> None:
    """Stop the connector and drop its publication, replication slot and snapshot state: the
    source no longer retains WAL for it (a retirement applied with ``--allow-delete``)."""
    with running.locked(cfg.name, timeout_s + 60):
        running.stop_held(cfg.name)
        with _source(cfg) as cur:
            _await_slot_released(cur, cfg.slot)
            setup.drop(cur, cfg)


def batch(actions: Sequence[Action]) -> list[Action]:
    """``actions`` with the table changes of one connector (same verb and gate) merged into one,
    at the place of the first: one restart instead of one per table."""
    out: list[Action] = []
    merged: dict[tuple[str, str, str], int] = {}
    for action in actions:
        if "add" not in action.params and "remove" not in action.params:
            out.append(action)
            continue
        group = (action.name, action.verb, action.gate)
        if group not in merged:
            merged[group] = len(out)
            out.append(action)
            continue
        first = out[merged[group]]
        params = {
            k: [*first.params.get(k, ()), *action.params.get(k, ())]
            for k in ("add", "remove")
            if k in first.params or k in action.params
        }
        detail = f"{first.detail}; {action.detail}"
        out[merged[group]] = dataclasses.replace(first, detail=detail, params=params)
    return out


@contextmanager
def _source(cfg: ConnectorConfig) -> Iterator[Any]:
    """An autocommit cursor on the connector's source database."""
    conn = connect(cfg.database_dsn, f"{cfg.name}-apply")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def _change_tables(
    cfg: ConnectorConfig,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    timeout_s: float,
    exact: bool = False,
) -> dict[str, Any]:
    """Add and remove tables (``exact``: also remove every table not in ``cfg.tables``); a
    running connector is restarted on its new tables. Without a publication, ``exact`` does
    nothing (the connector's first start creates it)."""
    with running.locked(cfg.name, timeout_s + 60):
        live = running.supervised(cfg.name)
        last = running.captured(cfg.name)
        with _source(cfg) as cur:
            found = publication_tables(cur, cfg.publication)
            if found is None and exact:
                return {}
            if found is None:
                raise PublicationError(
                    f"publication {cfg.publication} of connector {cfg.name} does not exist",
                    fix="start the connector first (its create action), or repair the drift",
                )
            published = found - {store.WATERMARK_TABLE}  # the connector's own, never removed
            captured = set(last) if last is not None else published
            if exact:
                remove = tuple(sorted((published | captured) - set(cfg.tables)))
            adds = [t for t in add if not (t in published and t in captured)]
            removes = [t for t in remove if t in published or t in captured]
            if not adds and not removes:
                return (running.status(cfg.name) or {}) if live else {}
            tables = tuple(sorted((captured | set(adds)) - set(removes)))
            if not tables:
                raise TerminalError(
                    f"connector {cfg.name} would capture no table after removing "
                    f"{', '.join(removes)}",
                    fix="retire the connector (its slot and publication) instead",
                )
            setup.check_tables(cur, dataclasses.replace(cfg, tables=tuple(adds)))
            publication.add_tables(cur, cfg.publication, adds)
            publication.drop_tables(cur, cfg.publication, removes)
            if adds:
                publication.wait_for_writers(cur)
            for table in removes:
                store.forget_request(cur, cfg.slot, table)
            for table in adds:  # a connector that does not capture it leaves it pending
                store.request_snapshot(cur, cfg.slot, table)
        if not live:
            return {}
        running.stop_held(cfg.name)
        return running.start_held(dataclasses.replace(cfg, tables=tables), timeout_s)


def _resnapshot(cfg: ConnectorConfig, timeout_s: float) -> dict[str, Any]:
    with running.locked(cfg.name, timeout_s + 60):
        with _source(cfg) as cur:
            setup.check_tables(cur, cfg)  # refuse before stopping anything
            running.stop_held(cfg.name)
            _await_slot_released(cur, cfg.slot)
            setup.drop(cur, cfg)
        # the first start again: publication and slot created, every table snapshotted
        return running.start_held(dataclasses.replace(cfg, snapshot="initial"), timeout_s)


def _await_slot_released(cur: Any, slot: str) -> None:
    """The stopped connector's walsender lets go of ``slot`` (an active slot cannot be dropped)."""
    query = "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s"
    if poll(lambda: (row := one(cur, query, (slot,))) is None or row[0] is None, SLOT_RELEASE_S):
        return
    raise TransientError(
        f"replication slot {slot} is still in use {SLOT_RELEASE_S:.0f}s after its connector "
        "stopped",
        fix=f"find the process in pg_stat_replication holding {slot}; then apply again",
    )
