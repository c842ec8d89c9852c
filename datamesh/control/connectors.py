"""CDC connector control: one connector process per (domain, source database).

``plan`` is pure: the CDC products of one domain and database become one connector that captures
all their tables. ``ensure_running`` starts it when its process is not alive (idempotent) and
``stop_all`` stops every connector of the work directory; their files live in
``<MESH_HOME>/cdc/<connector>/``: ``lock`` (held while starting or stopping), ``supervisor.json``
(process identities, restarts), ``command.json``, ``status.json`` and ``connector.log``. Each
connector runs under its supervisor (:mod:`datamesh.cdc.supervisor`), which restarts it with
back-off when it crashes.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamesh import names
from datamesh.cdc import supervisor
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.errors import TerminalError, TransientError
from datamesh.polling import poll
from datamesh.specs.product import DataProduct
from datamesh.stack.paths import mesh_home

READY_STATES = frozenset({"streaming", "paused"})


@dataclass(frozen=True)
class ConnectorSpec:
    """The desired connector of one source database."""

    domain: str
    database: str
    tables: tuple[str, ...]

    @property
    def name(self) -> str:
        """``<domain>-<database>-cdc``."""
        return names.connector(self.domain, self.database)


def plan(products: Sequence[DataProduct]) -> list[ConnectorSpec]:
    """Group CDC products into connectors (tables sorted, connectors by name)."""
    groups: dict[tuple[str, str], set[str]] = {}
    for p in products:
        if p.kind == "cdc" and p.source is not None:
            table = f"{p.source.schema}.{p.source.table}"
            groups.setdefault((p.domain, p.source.database), set()).add(table)
    return [ConnectorSpec(d, db, tuple(sorted(t))) for (d, db), t in sorted(groups.items())]


def spec_for(product: DataProduct, products: Sequence[DataProduct]) -> ConnectorSpec:
    """The connector that captures ``product``'s table."""
    assert product.source is not None
    return next(
        s
        for s in plan(products)
        if (s.domain, s.database) == (product.domain, product.source.database)
    )


def workdir(name: str) -> Path:
    """Files of connector ``name``."""
    return mesh_home() / "cdc" / name


def config(spec: ConnectorSpec, dsn: str, bootstrap: str, registry: str) -> ConnectorConfig:
    """The connector process configuration of ``spec``."""
    slot = default_slot(spec.domain, spec.database)
    return ConnectorConfig(
        dsn=dsn,
        database=spec.database,
        tables=spec.tables,
        domain=spec.domain,
        bootstrap=bootstrap,
        registry=registry,
        slot=slot,
        publication=slot,
        status_file=workdir(spec.name) / "status.json",
    )


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
def _lock(home: Path, timeout_s: float) -> Iterator[None]:
    """Hold ``<workdir>/lock`` (``flock``: released by the kernel if its holder dies), so
    parallel materializations of one database's products start one connector."""
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
    """
    home = workdir(cfg.name)
    home.mkdir(parents=True, exist_ok=True)
    with _lock(home, timeout_s + 30):
        if supervisor.live(supervisor.read_state(home), "supervisor") is None:
            supervisor.stop_supervised(home)  # a connector orphaned by a killed supervisor
            (home / "status.json").unlink(missing_ok=True)
            supervisor.start_supervised(cfg, home)
        return _await_streaming(cfg.name, timeout_s)


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
    home = workdir(name)
    if not home.is_dir():
        return False
    with _lock(home, 150):
        return supervisor.stop_supervised(home)


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
