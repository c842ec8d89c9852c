"""Embedded Flink SQL Gateway: the REST service through which processor jobs are planned and
submitted to the Flink cluster (the embedded one, or ``MESH_FLINK_REST_URL``).

It runs ``bin/sql-gateway.sh`` of the PyFlink wheel with a private ``conf/``, a ``lib/`` of the same
jars as the cluster (so it can plan the Kafka connector and the platform's Avro formats) and a
private ``opt/`` holding exactly one ``flink-sql-gateway*.jar`` (``FLINK_OPT_DIR``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import requests

from datamesh import endpoints
from datamesh.endpoints import Record
from datamesh.errors import StackError
from datamesh.process import spawn
from datamesh.stack.component import Component
from datamesh.stack.flink import (
    GATEWAY_JAR_PREFIX,
    classpath_jars,
    java_opts,
    link_jars,
    pyflink_home,
)
from datamesh.stack.paths import jars_dir


def gateway_config(flink_rest_url: str, port: int, home: Path) -> str:
    """``config.yaml`` of a loopback gateway whose jobs go to the cluster at ``flink_rest_url``."""
    target = urlparse(flink_rest_url)
    return "\n".join(
        [
            f"env.java.opts.all: {java_opts()}",
            "execution.target: remote",
            f"rest.address: {target.hostname}",
            f"rest.port: {target.port or (443 if target.scheme == 'https' else 80)}",
            "sql-gateway.endpoint.type: rest",
            "sql-gateway.endpoint.rest.address: 127.0.0.1",
            "sql-gateway.endpoint.rest.bind-address: 127.0.0.1",
            f"sql-gateway.endpoint.rest.port: {port}",
            f"io.tmp.dirs: {home}/tmp",
            "",
        ]
    )


class SqlGateway(Component):
    """Flink SQL Gateway; endpoint is its REST URL ``http://127.0.0.1:<port>``."""

    name = "sql_gateway"
    status_key = "flink_sql_gateway_url"
    deadline_s = 90.0
    fix = "check that `make jars` resolved flink-sql-gateway and that Java 17 is on PATH"

    def start(self) -> Record:
        flink_url = endpoints.endpoint("flink")  # MESH_FLINK_REST_URL or the embedded one
        (port,) = self.ports(["REST"])
        env = self._prepare(flink_url, port)
        pid = spawn(
            ["bash", str(pyflink_home() / "bin" / "sql-gateway.sh"), "start-foreground"],
            self.log_path(),
            env=env,
            cwd=self.home,
        )
        return Record(self.name, f"http://127.0.0.1:{port}", [pid], [port], str(self.log_path()))

    def ready(self, endpoint: str) -> bool:
        try:
            return requests.get(f"{endpoint}/v2/info", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _prepare(self, flink_url: str, port: int) -> dict[str, str]:
        dist = pyflink_home()
        conf, lib, opt = self.home / "conf", self.home / "lib", self.home / "opt"
        for d in (conf, self.home / "log", self.home / "run", self.home / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
            shutil.copyfile(dist / "conf" / name, conf / name)
        (conf / "config.yaml").write_text(gateway_config(flink_url, port, self.home))
        link_jars(lib, classpath_jars(self.name))
        link_jars(opt, [_gateway_jar(), *(dist / "opt").glob("flink-python*.jar")])
        return {
            "FLINK_CONF_DIR": str(conf),
            "FLINK_LIB_DIR": str(lib),
            "FLINK_OPT_DIR": str(opt),
            "FLINK_LOG_DIR": str(self.home / "log"),
            "FLINK_PID_DIR": str(self.home / "run"),
            "FLINK_HOME": str(dist),
            "JVM_ARGS": "-Xms128m -Xmx640m",
        }


def _gateway_jar() -> Path:
    found = sorted((jars_dir() / "flink").glob(f"{GATEWAY_JAR_PREFIX}*.jar"))
    if len(found) != 1:
        raise StackError(
            SqlGateway.name,
            f"expected one {GATEWAY_JAR_PREFIX}*.jar in {jars_dir() / 'flink'}, found {len(found)}",
            "run `make jars` (jvm/flink/pom.xml resolves it from Maven Central)",
        )
    return found[0]
