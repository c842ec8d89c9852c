"""Start, supervise, stop and observe connector processes (for a Dagster resource or the CLI).

The platform runs each connector *supervised* (:func:`start_supervised`): a small supervisor
process, ``python -m datamesh.cdc.supervisor <workdir>``, detached in its own session like the
embedded stack's services (:mod:`datamesh.process`), runs the connector as its child and
restarts it when it crashes, with back-off (1 s doubling to 30 s; a connector that ran a minute
counts as healthy again). Like systemd's ``Restart=on-failure`` with
``RestartPreventExitStatus=2``: a clean exit (0, after SIGTERM) and a terminal error (2: bad
configuration, whose fix is in the status file) are not restarted — the supervisor records the
exit and ends, so a broken connector is reported instead of looping.

``<workdir>/supervisor.json`` (written only by the supervisor, atomically) holds both processes'
*identities* — pid, create time and a command-line marker — plus ``state`` (running, backoff,
stopped, failed), ``restarts``, ``last_exit`` and ``last_exit_at``. Every signal goes through an
identity, so a pid the kernel reused for another process is never signalled.

Stopping sends SIGTERM to the supervisor, which forwards it: the connector delivers what is
queued, confirms it to the slot and exits; SIGKILL follows after a timeout (nothing is lost
either way: the slot replays whatever was not confirmed). :func:`start_connector` runs a bare,
unsupervised connector (for tests that drive the process themselves).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from datamesh.cdc.config import DSN_ENV, ConnectorConfig, to_args
from datamesh.cdc.status import read_status as _read_status
from datamesh.errors import TransientError
from datamesh.polling import poll
from datamesh.process import alive, failure_excerpt, spawn, stop_pid

COMMAND_FILE = "command.json"
STATE_FILE = "supervisor.json"
LOG_FILE = "connector.log"
TERMINAL_EXIT = 2  # the connector's exit code for an error that needs a human (cli.run)
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # a child that ran this long resets the back-off


@dataclass(frozen=True)
class Identity:
    """One process as it was started: a pid alone may be reused after it exits."""

    pid: int
    create_time: float
    marker: str  # a substring of its command line

    def process(self) -> psutil.Process | None:
        """The live ``psutil.Process`` this names; None if it exited, is a zombie, or the pid
        now belongs to another process (different create time or command line)."""
        try:
            proc = psutil.Process(self.pid)
            same = abs(proc.create_time() - self.create_time) < 0.01
            if not same or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc if self.marker in " ".join(proc.cmdline()) else None
        except psutil.Error:
            return None

    @classmethod
    def of(cls, pid: int, marker: str) -> Identity:
        """The identity of the running process ``pid``."""
        return cls(pid, psutil.Process(pid).create_time(), marker)

    @classmethod
    def load(cls, data: object) -> Identity | None:
        """From its ``supervisor.json`` form (None when absent or malformed)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(int(data["pid"]), float(data["create_time"]), str(data["marker"]))
        except (KeyError, TypeError, ValueError):
            return None


def command(config: ConnectorConfig) -> list[str]:
    """The argv that runs ``config`` with this interpreter (the DSN travels in the
    environment, so a password never shows in ``ps``)."""
    return [sys.executable, "-m", "datamesh.cdc", *to_args(config, with_dsn=False)]


def connector_marker(config: ConnectorConfig) -> str:
    """What the command line of ``config``'s connector process contains."""
    return f"--slot {config.slot}"


def _env(config: ConnectorConfig) -> dict[str, str]:
    return {"PYTHONUNBUFFERED": "1", DSN_ENV: config.dsn}


def start_connector(config: ConnectorConfig, log: Path) -> int:
    """Spawn a bare (unsupervised) connector of ``config``, output appended to ``log``."""
    return spawn(command(config), log, env=_env(config))


def stop_connector(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM a bare connector (graceful: drain and confirm), SIGKILL after ``timeout_s``."""
    stop_pid(pid, timeout=timeout_s)


def running(pid: int | None) -> bool:
    """True while the process ``pid`` is alive."""
    return alive(pid)


def read_status(path: Path) -> dict[str, Any] | None:
    """The connector's last status document (None before its first write)."""
    return _read_status(path)


def read_state(home: Path) -> dict[str, Any]:
    """The supervisor's record in ``home`` (``{}`` before its first write)."""
    try:
        data = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def live(state: dict[str, Any], role: str) -> psutil.Process | None:
    """The live ``psutil.Process`` of ``role`` (``supervisor`` or ``connector``) or None."""
    ident = Identity.load(state.get(role))
    return ident.process() if ident else None


def start_supervised(config: ConnectorConfig, home: Path, timeout_s: float = 15.0) -> Identity:
    """Spawn the supervisor of ``config`` in ``home``; return once it recorded itself."""
    home.mkdir(parents=True, exist_ok=True)
    spec = {"argv": command(config), "marker": connector_marker(config)}
    (home / COMMAND_FILE).write_text(json.dumps(spec))
    (home / STATE_FILE).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "datamesh.cdc.supervisor", str(home)]
    pid = spawn(argv, home / LOG_FILE, env=_env(config))

    def recorded() -> Identity | None:
        ident = Identity.load(read_state(home).get("supervisor"))
        if ident is not None and ident.pid == pid:
            return ident
        if not alive(pid):
            raise _did_not_start(config, home)
        return None

    ident = poll(recorded, timeout_s, interval_s=0.1)
    if ident is not None:
        return ident
    raise _did_not_start(config, home)


def _did_not_start(config: ConnectorConfig, home: Path) -> TransientError:
    return TransientError(
        f"CDC supervisor of {config.name} did not start: {failure_excerpt(home / LOG_FILE)}",
        fix=f"read {home / LOG_FILE}",
    )


def stop_supervised(home: Path, timeout_s: float = 30.0) -> bool:
    """Stop the supervisor in ``home`` and its connector (or an orphaned connector whose
    supervisor died); True when something was running. Only processes whose identity matches
    ``supervisor.json`` are signalled."""
    state = read_state(home)
    sup, child = live(state, "supervisor"), live(state, "connector")
    procs = [p for p in (sup, child) if p is not None]
    if not procs:
        return False
    with suppress(psutil.NoSuchProcess):
        procs[0].terminate()  # the supervisor forwards SIGTERM to the connector
    _, left = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in left:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(left, timeout=10)
    return True


def _describe(code: int) -> str:
    if code < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class _Supervisor:
    """The loop of ``python -m datamesh.cdc.supervisor <workdir>``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        spec = json.loads((home / COMMAND_FILE).read_text())
        self.argv: list[str] = spec["argv"]
        self.marker: str = spec["marker"]
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {
            "supervisor": asdict(Identity.of(os.getpid(), f"datamesh.cdc.supervisor {home}")),
            "connector": None,
            "state": "running",
            "restarts": 0,
            "last_exit": None,
            "last_exit_at": None,
        }

    def request_stop(self, *_: object) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        failures = 0
        while not self.stopping:
            started = time.monotonic()
            code = self._run_child()
            if self.stopping or code in (0, TERMINAL_EXIT):
                failed = code == TERMINAL_EXIT and not self.stopping
                if failed:
                    self._log("connector failed (exit code 2): not restarted, see status.json")
                self._write(state="failed" if failed else "stopped")
                return 0
            failures = 1 if time.monotonic() - started > STABLE_S else failures + 1
            delay = min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)
            self._log(f"connector {_describe(code)}; restarting in {delay:.0f}s")
            self._write(state="backoff")
            self._sleep(delay)
            if not self.stopping:
                self.state["restarts"] += 1
        self._write(state="stopped")
        return 0

    def _run_child(self) -> int:
        self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        if self.stopping:  # SIGTERM arrived while it was being spawned
            self.child.terminate()
        self._write(state="running", connector=asdict(Identity.of(self.child.pid, self.marker)))
        code = self.child.wait()
        self.state.update(last_exit=_describe(code), last_exit_at=time.time())
        self._write(connector=None)
        return code

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _write(self, **changes: Any) -> None:
        self.state.update(changes)
        tmp = self.home / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, self.home / STATE_FILE)

    def _log(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} [supervisor] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m datamesh.cdc.supervisor <workdir>``: supervise the connector of ``<workdir>``
    (its argv in ``command.json``, its DSN in ``$MESH_CDC_DSN``) until SIGTERM/SIGINT."""
    (home,) = sys.argv[1:] if argv is None else argv
    sup = _Supervisor(Path(home))
    signal.signal(signal.SIGTERM, sup.request_stop)
    signal.signal(signal.SIGINT, sup.request_stop)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
