"""``mesh dev`` runs ``dagster dev`` in place of itself; ``mesh down`` stops it by PID.

``dagster dev`` started from a script inherits ignored SIGINT/SIGTERM and then ignores both, so
the dispositions are reset to default before exec (see ../shared/ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from datamesh import endpoints
from datamesh.polling import poll
from datamesh.process import alive, descendants, stop_pid
from datamesh.stack.paths import PROJECT_ROOT, mesh_home


def dagster_home() -> Path:
    """The Dagster instance of ``mesh dev``: ``$DAGSTER_HOME``, else ``<MESH_HOME>/dagster``.

    A ``dagster asset materialize`` typed beside ``mesh dev`` with this ``DAGSTER_HOME`` lands
    in the instance the UI shows (``mesh status`` prints it).
    """
    return Path(endpoints.setting(endpoints.DAGSTER_HOME_VAR) or mesh_home() / "dagster")


# Written into mesh dev's DAGSTER_HOME when it has no dagster.yaml (an existing one is the
# user's: never overwritten). The topic sensors launch one sink run per offset range and the
# machine may be small: runs queue instead of all starting at once. Sensors are evaluated in
# threads (one slow tick, say an unreachable broker, no longer delays every other sensor) and
# the queue is looked at every second, not every five: a sink run spends its time in its own
# start (a Python process loading the code location), not waiting to be picked. The platform's
# own loggers (a Flink job planned, submitted, RUNNING; an apply's steps) show in each run's
# logs in the UI. Sensors tick every 15-60 s: skipped ticks are kept a day, the others a week.
INSTANCE_YAML = """\
# Written by `mesh dev` because this directory had none; edit freely, it is not overwritten.
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 4
  dequeue_interval_seconds: 1
python_logs:
  python_log_level: INFO
  managed_python_loggers: [datamesh.flink, datamesh.control, datamesh.sinks, datamesh.registry]
sensors:
  use_threads: true
  num_workers: 4
auto_materialize:
  use_threads: true
  num_workers: 2
retention:
  sensor:
    purge_after_days:
      skipped: 1
      failure: 7
      success: 7
"""


def ensure_instance_config(home: Path) -> Path:
    """``<home>/dagster.yaml`` (written from :data:`INSTANCE_YAML` if missing)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        path.write_text(INSTANCE_YAML)
    return path


def pid_file() -> Path:
    """Where ``mesh dev`` records the PID of ``dagster dev``."""
    return mesh_home() / "dagster-dev.pid"


def exec_dagster_dev(port: int) -> None:
    """Replace this process with ``dagster dev`` on 127.0.0.1:``port``."""
    env = endpoints.child_environment({endpoints.DAGSTER_HOME_VAR: str(dagster_home())})
    ensure_instance_config(Path(env["DAGSTER_HOME"]))
    url = f"http://127.0.0.1:{port}"
    pid_file().write_text(json.dumps({"pid": os.getpid(), "url": url}))  # exec keeps the PID
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    dagster = str(Path(sys.executable).parent / "dagster")
    print(f"==> Dagster UI on http://127.0.0.1:{port} (Ctrl-C or `mesh down` stops it)", flush=True)
    os.chdir(PROJECT_ROOT)
    os.execve(
        dagster,
        [
            dagster,
            "dev",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
        ],
        env,
    )


def recorded_url() -> str | None:
    """The URL of the ``dagster dev`` that ``mesh dev`` started, if it is still running."""
    info = _read()
    return str(info["url"]) if info and alive(int(str(info["pid"]))) else None


def _read() -> dict[str, object] | None:
    try:
        return dict(json.loads(pid_file().read_text()))
    except (OSError, ValueError):
        return None


def stop(progress: Callable[[str], None]) -> None:
    """SIGTERM ``dagster dev`` (it stops its webserver, daemon and code servers), then SIGKILL
    whatever of its process tree is left after 30 s. The process group is left alone: it may be
    the terminal's, shared with ``make``."""
    info = _read()
    if info is None:
        return
    pid = int(str(info["pid"]))
    if alive(pid):
        progress(f"{'dagster':16} stopping  pid {pid}")
        tree = descendants(pid)
        os.kill(pid, signal.SIGTERM)
        poll(lambda: not alive(pid), 30, interval_s=0.3)
        for leftover in [pid, *tree]:
            if alive(leftover):
                os.kill(leftover, signal.SIGKILL)
                stop_pid(leftover, timeout=5)
    pid_file().unlink(missing_ok=True)
