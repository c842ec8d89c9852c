"""Embedded Apache Flink 2.x session cluster from the PyFlink wheel's own ``bin/`` scripts.

A private ``conf/`` and a ``lib/`` of symlinks (the wheel's jars plus the Maven-resolved
connector jars) live under the work directory, so the installed wheel is never modified.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import requests

from datamesh import endpoints
from datamesh.endpoints import Record
from datamesh.errors import StackError
from datamesh.process import alive, spawn, stop_pid, wait_until
from datamesh.stack import state
from datamesh.stack.component import Component
from datamesh.stack.paths import PROJECT_ROOT, jars_dir, mesh_home

# The demo alone runs five jobs (three processors, two PostgreSQL sinks), each in one slot.
SLOTS = 8
FLINK_VENV = ".venv-flink"
FLINK_DIST_ENV = "MESH_FLINK_DIST"
# Resolved by jvm/flink/pom.xml next to the connectors, but it belongs in a private opt/ of the
# SQL Gateway (bin/sql-gateway.sh wants exactly one there), not on the cluster's classpath.
GATEWAY_JAR_PREFIX = "flink-sql-gateway"
# The platform's own format jar (the Makefile builds it from the Maven module into jars/flink).
FORMAT_JAR = "mesh-flink-format.jar"
FORMAT_MODULE = "jvm/flink-format"


def pyflink_home() -> Path:
    """The Flink distribution shipped inside the ``apache-flink`` wheel.

    ``MESH_FLINK_DIST`` names one; else it is the wheel installed in ``.venv-flink`` by ``make
    install`` — a venv of its own, because PyFlink's pins (apache-beam: pyarrow < 17) would hold
    back the platform's (pyiceberg writes with pyarrow >= 19). Nothing imports PyFlink.
    """
    override = endpoints.setting(FLINK_DIST_ENV)
    if override:
        return Path(override)
    found = sorted((PROJECT_ROOT / FLINK_VENV / "lib").glob("python3*/site-packages/pyflink"))
    if not found:
        raise StackError(
            "flink",
            f"no Flink distribution in {PROJECT_ROOT / FLINK_VENV}",
            f"run `make install` (it installs jvm/flink/requirements.txt there), or set "
            f"{FLINK_DIST_ENV} to a Flink distribution",
        )
    return found[-1]


def flink_config(home: Path, rest: int, rpc: int, blob: int) -> str:
    """``config.yaml`` (Flink 2.x flattened keys) for a loopback session cluster."""
    return "\n".join(
        [
            f"env.java.opts.all: {_java_opts()}",
            "jobmanager.bind-host: 127.0.0.1",
            "jobmanager.rpc.address: 127.0.0.1",
            f"jobmanager.rpc.port: {rpc}",
            "jobmanager.memory.process.size: 900m",
            "taskmanager.bind-host: 127.0.0.1",
            "taskmanager.host: 127.0.0.1",
            f"taskmanager.numberOfTaskSlots: {SLOTS}",
            "taskmanager.memory.process.size: 2048m",
            "parallelism.default: 1",
            "rest.address: 127.0.0.1",
            "rest.bind-address: 127.0.0.1",
            f"rest.port: {rest}",
            f"blob.server.port: {blob}",
            # A lost TaskManager is noticed after ~2 missed heartbeats instead of ~50 s.
            "heartbeat.interval: 2000",
            "heartbeat.timeout: 20000",
            # The REST API serves a job's details from a cache kept this long (default 3 s): a
            # deployment waiting for every task to run read a 1.5 s stale state on average.
            "web.refresh-interval: 1000",
            "execution.checkpointing.interval: 10s",
            # Under MESH_HOME and kept when a job is cancelled: the platform restores a job from
            # its last checkpoint after the JobManager restarted (datamesh.flink.record).
            f"execution.checkpointing.dir: file://{home}/checkpoints",
            "execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION",
            f"execution.checkpointing.savepoint-dir: file://{home}/savepoints",
            "restart-strategy.type: exponential-delay",
            f"io.tmp.dirs: {home}/tmp",
            "",
        ]
    )


def java_opts() -> str:
    """The JVM --add-opens list of the wheel's own config.yaml."""
    return _java_opts()


def _java_opts() -> str:
    # Flink needs the --add-opens list its own config.yaml ships; copy it rather than restate it.
    for line in (pyflink_home() / "conf" / "config.yaml").read_text().splitlines():
        if line.strip().startswith("all: --add-"):
            return line.split("all:", 1)[1].strip()
    return ""


class Flink(Component):
    """JobManager + one TaskManager; endpoint is the REST URL ``http://127.0.0.1:<port>``."""

    name = "flink"
    status_key = "flink_rest_url"
    deadline_s = 120.0
    fix = "check that `make jars` ran and that Java 17 is on PATH"

    def start(self) -> Record:
        if shutil.which("java") is None:
            raise StackError(self.name, "java is not on PATH", "install OpenJDK 17")
        rest, rpc, blob = self.ports(["REST", "RPC", "blob"])
        env = self._prepare(rest, rpc, blob)
        bin_dir = pyflink_home() / "bin"
        jm = spawn(
            ["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"],
            self.log_path(),
            env=env,
            cwd=self.home,
        )
        tm = spawn(
            ["bash", str(bin_dir / "taskmanager.sh"), "start-foreground"],
            self.home / "taskmanager.log",
            env=env,
            cwd=self.home,
        )
        return Record(
            self.name, f"http://127.0.0.1:{rest}", [jm, tm], [rest, rpc, blob], str(self.log_path())
        )

    def ready(self, endpoint: str) -> bool:
        try:
            overview = requests.get(f"{endpoint}/overview", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False
        return int(overview.get("taskmanagers", 0)) >= 1 and int(overview.get("slots-total", 0)) > 0

    def log_path(self) -> Path:
        return self.home / "jobmanager.log"

    def _prepare(self, rest: int, rpc: int, blob: int) -> dict[str, str]:
        dist = pyflink_home()
        conf, lib = self.home / "conf", self.home / "lib"
        for d in (conf, lib, self.home / "log", self.home / "run", self.home / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
            shutil.copyfile(dist / "conf" / name, conf / name)
        (conf / "config.yaml").write_text(flink_config(self.home, rest, rpc, blob))
        link_jars(lib, classpath_jars(self.name))
        return self._env()

    def _env(self) -> dict[str, str]:
        return {
            "FLINK_CONF_DIR": str(self.home / "conf"),
            "FLINK_LIB_DIR": str(self.home / "lib"),
            "FLINK_LOG_DIR": str(self.home / "log"),
            "FLINK_PID_DIR": str(self.home / "run"),
            "FLINK_HOME": str(pyflink_home()),
        }

    def restart_taskmanager(self, record: Record, crash: bool = True) -> int:
        """Stop the TaskManager (SIGKILL when ``crash``, as a lost machine would) and start a new
        one with the same configuration; ``record.pids[1]`` becomes the new PID, which is returned.
        """
        old = record.pids[1] if len(record.pids) > 1 else None
        if old and alive(old):
            os.killpg(os.getpgid(old), signal.SIGKILL if crash else signal.SIGTERM)
            while alive(old):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(old, os.WNOHANG)
                time.sleep(0.05)
        tm = spawn(
            [
                "bash",
                str(pyflink_home() / "bin" / "taskmanager.sh"),
                "start-foreground",
            ],
            self.home / "taskmanager.log",
            env=self._env(),
            cwd=self.home,
        )
        record.pids = [record.pids[0], tm, *record.pids[2:]]
        return tm


def restart_taskmanager(crash: bool = True) -> int:
    """Restart the embedded cluster's TaskManager (fault tests) and record its new PID."""
    records = state.load()
    record = records.get("flink")
    if record is None or record.external:
        raise StackError(
            "flink",
            "no embedded Flink cluster to restart a TaskManager of",
            "run `mesh up` (an external cluster's TaskManagers are not ours to restart)",
        )
    pid = Flink(mesh_home()).restart_taskmanager(record, crash)
    state.save(records)
    return pid


def restart_cluster(crash: bool = True) -> Record:
    """Stop the embedded JobManager and TaskManager (SIGKILL when ``crash``, as a lost machine
    would) and start them again on their recorded ports; wait until a TaskManager registered.

    The new JobManager knows no job (no high availability): what ran is known only from the
    platform's job records and the checkpoints and savepoints under ``MESH_HOME``.
    """
    records = state.load()
    old = records.get("flink")
    if old is None or old.external:
        raise StackError(
            "flink",
            "no embedded Flink cluster to restart",
            "run `mesh up` (an external cluster is not ours to restart)",
        )
    for pid in reversed(old.pids):
        if crash and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        stop_pid(pid)
    comp = Flink(mesh_home())
    comp.recorded_ports = list(old.ports)
    record = comp.start()
    records["flink"] = record
    state.save(records)
    log = Path(record.log)
    wait_until(comp.name, lambda: comp.ready(record.endpoint), comp.deadline_s, log, None, comp.fix)
    return record


def classpath_jars(component: str) -> list[Path]:
    """The wheel's lib/ jars plus the Maven-resolved connector and format jars (not the gateway)."""
    resolved = sorted((jars_dir() / "flink").glob("*.jar"))
    if not any(j.name.startswith("flink-sql-connector-kafka") for j in resolved):
        raise StackError(
            component,
            f"no Flink Kafka connector in {jars_dir() / 'flink'}",
            "run `make jars` (Maven resolves it from Maven Central)",
        )
    connectors = [j for j in resolved if not j.name.startswith(GATEWAY_JAR_PREFIX)]
    stale = stale_format_jar(jars_dir() / "flink" / FORMAT_JAR, PROJECT_ROOT / FORMAT_MODULE)
    if stale:
        raise StackError(component, stale, "run `make jars` (Maven rebuilds and tests it)")
    return [*(pyflink_home() / "lib").glob("*.jar"), *connectors]


def stale_format_jar(jar: Path, module: Path) -> str | None:
    """Why the built format jar must not run, or None: a source of ``module`` (a checkout's
    ``jvm/flink-format``) is newer than ``jar``. Jobs would run yesterday's format — e.g. one
    that dead-letters what today's fails on — and every test of it would say so misleadingly.
    Installed without the module's sources (or without the jar yet: ``make jars`` builds it
    before anything starts), there is nothing to compare."""
    sources = [f for f in (module / "src").rglob("*") if f.is_file()] if module.is_dir() else []
    if not sources or not jar.is_file():
        return None
    newest = max(sources, key=lambda f: f.stat().st_mtime)
    if newest.stat().st_mtime <= jar.stat().st_mtime:
        return None
    return f"{jar.name} is older than {newest.relative_to(module.parent.parent)}"


def link_jars(directory: Path, jars: list[Path]) -> None:
    """Make ``directory`` hold exactly symlinks to ``jars``."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for jar in jars:
        (directory / jar.name).symlink_to(jar)
