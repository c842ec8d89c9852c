"""Embedded Apache Flink 2.x session cluster from the PyFlink wheel's own ``bin/`` scripts.

A private ``conf/`` and a ``lib/`` of symlinks (the wheel's jars plus the Maven-resolved
connector jars) live under the work directory, so the installed wheel is never modified.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from datamesh.errors import StackError
from datamesh.stack.component import Component, Record
from datamesh.stack.paths import jars_dir
from datamesh.stack.process import free_port, spawn

SLOTS = 4


def pyflink_home() -> Path:
    """The Flink distribution shipped inside the ``apache-flink`` wheel."""
    import pyflink

    return Path(pyflink.__file__).parent


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
            "taskmanager.memory.process.size: 1400m",
            "parallelism.default: 1",
            "rest.address: 127.0.0.1",
            "rest.bind-address: 127.0.0.1",
            f"rest.port: {rest}",
            f"blob.server.port: {blob}",
            "execution.checkpointing.interval: 10s",
            f"execution.checkpointing.dir: file://{home}/checkpoints",
            f"execution.checkpointing.savepoint-dir: file://{home}/savepoints",
            "restart-strategy.type: exponential-delay",
            f"io.tmp.dirs: {home}/tmp",
            "",
        ]
    )


def _java_opts() -> str:
    # Flink needs the --add-opens list its own config.yaml ships; copy it rather than restate it.
    for line in (pyflink_home() / "conf" / "config.yaml").read_text().splitlines():
        if line.strip().startswith("all: --add-"):
            return line.split("all:", 1)[1].strip()
    return ""


class Flink(Component):
    """JobManager + one TaskManager; endpoint is the REST URL ``http://127.0.0.1:<port>``."""

    name = "flink"
    env_var = "MESH_FLINK_REST_URL"
    status_key = "flink_rest_url"
    deadline_s = 120.0
    fix = "check that `make jars` ran and that Java 17 is on PATH"

    def start(self) -> Record:
        if shutil.which("java") is None:
            raise StackError(self.name, "java is not on PATH", "install OpenJDK 17")
        rest, rpc, blob = free_port(), free_port(), free_port()
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
        self._link_jars(lib, [*(dist / "lib").glob("*.jar"), *self._connector_jars()])
        return {
            "FLINK_CONF_DIR": str(conf),
            "FLINK_LIB_DIR": str(lib),
            "FLINK_LOG_DIR": str(self.home / "log"),
            "FLINK_PID_DIR": str(self.home / "run"),
            "FLINK_HOME": str(dist),
        }

    def _connector_jars(self) -> list[Path]:
        jars = sorted((jars_dir() / "flink").glob("*.jar"))
        if not any(j.name.startswith("flink-sql-connector-kafka") for j in jars):
            raise StackError(
                self.name,
                f"no Flink Kafka connector in {jars_dir() / 'flink'}",
                "run `make jars` (Maven resolves it from Maven Central)",
            )
        return jars

    @staticmethod
    def _link_jars(lib: Path, jars: list[Path]) -> None:
        for old in lib.iterdir():
            old.unlink()
        for jar in jars:
            (lib / jar.name).symlink_to(jar)
