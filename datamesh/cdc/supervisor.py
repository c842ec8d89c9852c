"""Start, stop and observe connector processes (for a Dagster resource or the CLI).

A connector runs detached in its own session, like the embedded stack's services
(:mod:`datamesh.stack.process`), so it outlives the caller; its output goes to a log file and
its state to a status file (:mod:`datamesh.cdc.status`). Stopping sends SIGTERM: the
connector delivers what is queued, confirms it to the slot and exits; SIGKILL follows after a
timeout (nothing is lost either way: the slot replays whatever was not confirmed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from datamesh.cdc.config import DSN_ENV, ConnectorConfig, to_args
from datamesh.cdc.status import read_status as _read_status
from datamesh.stack.process import alive, spawn, stop_pid


def command(config: ConnectorConfig) -> list[str]:
    """The argv that runs ``config`` with this interpreter (the DSN travels in the
    environment, so a password never shows in ``ps``)."""
    return [sys.executable, "-m", "datamesh.cdc", *to_args(config, with_dsn=False)]


def start_connector(config: ConnectorConfig, log: Path) -> int:
    """Spawn the connector of ``config`` detached, output appended to ``log``; return its PID."""
    env = {"PYTHONUNBUFFERED": "1", DSN_ENV: config.dsn}
    return spawn(command(config), log, env=env)


def stop_connector(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM the connector (graceful: drain and confirm), SIGKILL after ``timeout_s``."""
    stop_pid(pid, timeout=timeout_s)


def running(pid: int | None) -> bool:
    """True while the connector process is alive."""
    return alive(pid)


def read_status(path: Path) -> dict[str, Any] | None:
    """The connector's last status document (None before its first write)."""
    return _read_status(path)
