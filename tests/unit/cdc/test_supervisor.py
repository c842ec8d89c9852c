"""Process identity and supervision of connectors, without the stack: a fake connector (a tiny
Python program) under the real supervisor process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import pytest

from datamesh.cdc import running, supervisor
from datamesh.cdc.supervisor import Identity
from datamesh.process import spawn


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _record(home: Path, **roles: Identity) -> None:
    home.mkdir(parents=True, exist_ok=True)
    state = {role: asdict(ident) for role, ident in roles.items()}
    (home / supervisor.STATE_FILE).write_text(json.dumps(state))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    return running.workdir("t-db-cdc")


def test_identity_matches_only_the_same_process() -> None:
    me = Identity.of(os.getpid(), "pytest")
    assert me.process() is not None
    assert Identity(me.pid, me.create_time - 100, me.marker).process() is None  # reused pid
    assert Identity(me.pid, me.create_time, "datamesh.cdc.supervisor /x").process() is None
    assert Identity(2**22 + 12345, me.create_time, "").process() is None  # no such pid


def test_stop_never_signals_a_reused_pid(home: Path) -> None:
    """The recorded pid is alive, but it is another process (this one): stop leaves it be."""
    me = Identity.of(os.getpid(), "")
    stale = Identity(me.pid, me.create_time - 3600, "")
    _record(home, supervisor=stale, connector=stale)
    assert running.pid_of("t-db-cdc") is None
    assert running.stop("t-db-cdc") is False  # would have SIGTERMed pytest otherwise
    assert psutil.Process(os.getpid()).is_running()


def test_stop_never_signals_a_foreign_command_line(home: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        ident = Identity.of(other.pid, "--slot t_db_cdc")  # same pid+time, not a connector
        _record(home, supervisor=ident)
        assert running.stop("t-db-cdc") is False
        assert other.poll() is None
        other.kill()


FAKE = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
mode = open(sys.argv[1]).read().strip()
if mode == "terminal":
    sys.exit(2)
while True:
    time.sleep(0.1)
"""


def _start_fake(home: Path, tmp_path: Path, mode: str) -> Path:
    """The real supervisor process around a fake connector whose behaviour ``mode`` sets."""
    home.mkdir(parents=True, exist_ok=True)
    (tmp_path / "fake.py").write_text(FAKE)
    (tmp_path / "mode").write_text(mode)
    argv = [sys.executable, str(tmp_path / "fake.py"), str(tmp_path / "mode"), "--slot", "s1"]
    spec = {"argv": argv, "marker": "--slot s1"}
    (home / supervisor.COMMAND_FILE).write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "datamesh.cdc.supervisor", str(home)]
    pid = spawn(cmd, home / supervisor.LOG_FILE)
    _wait(lambda: supervisor.read_state(home).get("supervisor", {}).get("pid") == pid, "start")
    return home


def test_crashed_connector_is_restarted_and_counted(home: Path, tmp_path: Path) -> None:
    _start_fake(home, tmp_path, "run")
    first = _wait(lambda: running.pid_of("t-db-cdc"), "the connector")
    os.kill(first, 9)
    second = _wait(
        lambda: (pid := running.pid_of("t-db-cdc")) not in (None, first) and pid, "a restart"
    )
    state = supervisor.read_state(home)
    assert state["restarts"] == 1 and state["last_exit"] == "killed by SIGKILL"
    assert psutil.Process(second).parent().pid == state["supervisor"]["pid"]
    assert running.stop("t-db-cdc") is True
    assert not supervisor.running(second)
    assert supervisor.read_state(home)["state"] == "stopped"


def test_terminal_exit_is_not_restarted(home: Path, tmp_path: Path) -> None:
    _start_fake(home, tmp_path, "terminal")
    state = _wait(lambda: (s := supervisor.read_state(home)).get("state") == "failed" and s, "end")
    assert state["restarts"] == 0 and state["last_exit"] == "exit code 2"
    _wait(lambda: supervisor.live(state, "supervisor") is None, "the supervisor to exit")


def test_backoff_doubles_up_to_the_cap(home: Path, tmp_path: Path) -> None:
    (tmp_path / "fake.py").write_text("import sys; sys.exit(1)")
    home.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, str(tmp_path / "fake.py")], "marker": "fake.py"}
    (home / supervisor.COMMAND_FILE).write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "datamesh.cdc.supervisor", str(home)]
    spawn(cmd, home / supervisor.LOG_FILE)
    # crashes at once: waits 1 s, then 2 s, then 4 s -> 2 restarts after ~3.5 s
    _wait(lambda: supervisor.read_state(home).get("restarts") == 2, "two restarts", 8)
    log = (home / supervisor.LOG_FILE).read_text()
    assert "restarting in 1s" in log and "restarting in 2s" in log, log
    assert running.stop("t-db-cdc") is True
    assert supervisor.read_state(home)["state"] == "stopped"
