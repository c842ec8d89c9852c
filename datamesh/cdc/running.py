"""The CDC connectors of this work directory as running processes: start one (under a lock,
supervised), wait until it streams, read its status, stop it — one connector per (domain,
source database), whatever asked for it (a materialization, ``mesh cdc``, ``mesh down``).

Their files live in ``<MESH_HOME>/cdc/<connector>/``: ``lock`` (held while starting or
stopping), ``supervisor.json`` (process identities, restarts), ``command.json``,
``status.json`` and ``connector.log``. Each connector runs under its supervisor
(:mod:`datamesh.cdc.supervisor`), which restarts it with back-off when it crashes. Which
connectors should exist is the controller's plan (:mod:`datamesh.control.connectors`).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datamesh.cdc import supervisor
from datamesh.cdc.config import ConnectorConfig, parse_heartbeats, parse_tables
from datamesh.endpoints import mesh_home
from datamesh.errors import MeshError, TerminalError, TransientError
from datamesh.polling import poll

READY_STATES = frozenset({"streaming", "paused"})


def workdir(name: str) -> Path:
    """Files of connector ``name``."""
    return mesh_home() / "cdc" / name


def pid_of(name: str) -> int | None:
    """PID of the running connector process ``name`` (None when not running, in back-off, or
    when the recorded pid now belongs to another process)."""
    proc = supervisor.live(supervisor.read_state(workdir(name)), "connector")
    return proc.pid if proc is not None else None


def status(name: str) -> dict[str, Any] | None:
    """The connector's last status document, plus what its supervisor reports:
    ``connector_restarts``, ``connector_last_exit`` and ``supervisor_state``."""
    home = workdir(name)
    current = supervisor.read_status(home / "status.json")
    if current is None:
        return None
    state = supervisor.read_state(home)
    return {
        **current,
        "connector_restarts": int(state.get("restarts") or 0),
        "connector_last_exit": str(state.get("last_exit") or ""),
        "supervisor_state": str(state.get("state") or "stopped"),
    }


@contextmanager
def locked(name: str, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold connector ``name``'s ``lock`` (``flock``: released by the kernel if its holder
    dies), so parallel materializations of one database's products start one connector and a
    reconfiguration (stop, change the source, start) never interleaves with another. Not
    re-entrant: under it, use :func:`start_held` and :func:`stop_held`."""
    home = workdir(name)
    home.mkdir(parents=True, exist_ok=True)
    with (home / "lock").open("a") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"{home / 'lock'} still held after {timeout_s:.0f}s",
                        fix="another process is starting or stopping this connector; retry",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_running(cfg: ConnectorConfig, timeout_s: float = 90.0) -> dict[str, Any]:
    """Start the supervised connector unless it runs; wait until it streams; its status.

    Under the connector's lock, so of concurrent callers one starts it and the others find it.
    A connector that stopped with an error raises :class:`TerminalError` carrying its message.
    A running connector is left as it is, whatever tables it captures: changing them is the
    controller's job (``datamesh.control.connector_apply``).
    """
    with locked(cfg.name, timeout_s + 30):
        return start_held(cfg, timeout_s)


def start_held(cfg: ConnectorConfig, timeout_s: float = 90.0) -> dict[str, Any]:
    """:func:`ensure_running` for a caller that holds :func:`locked`."""
    home = workdir(cfg.name)
    if not supervised(cfg.name):
        supervisor.stop_supervised(home)  # a connector orphaned by a killed supervisor
        (home / "status.json").unlink(missing_ok=True)
        supervisor.start_supervised(cfg, home)
    return _await_streaming(cfg.name, timeout_s)


def stop_held(name: str) -> bool:
    """:func:`stop` for a caller that holds :func:`locked`."""
    return supervisor.stop_supervised(workdir(name))


def supervised(name: str) -> bool:
    """True while connector ``name``'s supervisor runs (its connector streams, or is in
    back-off and will be started again)."""
    return supervisor.live(supervisor.read_state(workdir(name)), "supervisor") is not None


def captured(name: str) -> tuple[str, ...] | None:
    """The tables of the command connector ``name`` was last started with (what it captures
    while its supervisor runs); None when it was never started from this work directory."""
    try:
        argv = json.loads((workdir(name) / supervisor.COMMAND_FILE).read_text())["argv"]
        return parse_tables(argv[argv.index("--tables") + 1])
    except (OSError, ValueError, KeyError, IndexError, TypeError, MeshError):
        return None


def heartbeats(name: str) -> tuple[tuple[str, float], ...] | None:
    """The ``--heartbeat`` tables and intervals connector ``name`` was last started with; None
    when it was never started from this work directory."""
    try:
        argv = json.loads((workdir(name) / supervisor.COMMAND_FILE).read_text())["argv"]
        items = [argv[i + 1] for i, a in enumerate(argv) if a == "--heartbeat"]
        return parse_heartbeats(items, [i.partition("=")[0] for i in items])
    except (OSError, ValueError, KeyError, IndexError, TypeError, MeshError):
        return None


def _await_streaming(name: str, timeout_s: float) -> dict[str, Any]:
    home = workdir(name)

    def streaming() -> dict[str, Any] | None:
        state = supervisor.read_state(home)
        current = status(name) or {}
        child = supervisor.live(state, "connector")
        ready = current.get("state") in READY_STATES
        if ready and child is not None and current.get("pid") == child.pid:
            return current
        if supervisor.live(state, "supervisor") is None:
            raise TerminalError(
                f"CDC connector {name} stopped ({state.get('last_exit') or 'no exit recorded'}): "
                f"{current.get('error') or 'see ' + str(home / 'connector.log')}",
                fix="fix the cause above, then materialize again",
            )
        return None

    current = poll(streaming, timeout_s)
    if current is not None:
        return current
    state = supervisor.read_state(home)
    raise TransientError(
        f"CDC connector {name} is not streaming after {timeout_s:.0f}s "
        f"({state.get('restarts', 0)} restarts, last exit: {state.get('last_exit')})",
        fix=f"read {home / 'connector.log'}",
    )


def stop(name: str) -> bool:
    """Stop connector ``name`` gracefully; True when one was running. Only a process whose
    recorded identity (pid, create time, command line) matches is signalled."""
    if not workdir(name).is_dir():
        return False
    with locked(name, 150):
        return stop_held(name)


def describe(name: str) -> str:
    """One line for ``mesh cdc status``: restarts and the last exit of the connector."""
    state = supervisor.read_state(workdir(name))
    if not state:
        return "restarts 0"
    last = f" (last: {state['last_exit']})" if state.get("last_exit") else ""
    return f"supervisor {state.get('state')}; restarts {state.get('restarts', 0)}{last}"


def stop_all() -> list[str]:
    """Stop every connector of this work directory; return their names."""
    root = mesh_home() / "cdc"
    stopped = (
        [d.name for d in sorted(root.iterdir()) if d.is_dir() and stop(d.name)]
        if root.exists()
        else []
    )
    return stopped
