"""Embedded Apache Kafka 4.x: one combined broker+controller (KRaft) from Maven-resolved jars."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from confluent_kafka.admin import AdminClient

from datamesh.errors import StackError
from datamesh.stack.component import Component, Record
from datamesh.stack.paths import jars_dir
from datamesh.stack.process import free_port, log_tail, port_open, spawn

CLUSTER_ID_FILE = "cluster.id"

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
"""


def server_properties(data_dir: Path, broker_port: int, controller_port: int) -> str:
    """``server.properties`` of a one-node combined KRaft cluster on loopback."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            # The static voter form lets ports change between restarts of the same data dir.
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            # One node: internal topics cannot have the default replication factor 3 / min ISR 2.
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Topics exist only because a declaration says so: a typo must fail, not create a topic.
            "auto.create.topics.enable=false",
            "",
        ]
    )


class Kafka(Component):
    """Apache Kafka broker; endpoint is the bootstrap ``127.0.0.1:<port>``."""

    name = "kafka"
    status_key = "kafka_bootstrap"
    deadline_s = 90.0
    fix = "check that `make jars` ran and that Java 17+ is on PATH"

    def start(self) -> Record:
        java = _java()
        classpath = self._classpath()
        broker, controller = free_port(), free_port()
        data = self.home / "data"
        props = self.home / "server.properties"
        log4j = self.home / "log4j2.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        props.write_text(server_properties(data, broker, controller))
        log4j.write_text(LOG4J2)
        if not (data / "meta.properties").exists():
            self._format(java, classpath, props)
        argv = [
            java,
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(props),
        ]
        pid = spawn(argv, self.log_path())
        return Record(
            self.name, f"127.0.0.1:{broker}", [pid], [broker, controller], str(self.log_path())
        )

    def ready(self, endpoint: str) -> bool:
        host, port = endpoint.rsplit(":", 1)
        if not port_open(int(port), host):
            return False
        admin = AdminClient({"bootstrap.servers": endpoint, "socket.timeout.ms": 2000})
        try:
            return bool(admin.list_topics(timeout=2).brokers)
        except Exception:  # KafkaException while the broker finishes starting: not ready yet
            return False

    def _classpath(self) -> str:
        jars = jars_dir() / "kafka"
        if not any(jars.glob("kafka_2.13-*.jar")):
            raise StackError(
                self.name,
                f"no Kafka jars in {jars}",
                "run `make jars` (Maven resolves them from Maven Central)",
            )
        return f"{jars}/*"

    def _format(self, java: str, classpath: str, props: Path) -> None:
        cluster_id_file = self.home / CLUSTER_ID_FILE
        if not cluster_id_file.exists():
            cluster_id = self._tool(java, classpath, ["random-uuid"]).strip().splitlines()[-1]
            cluster_id_file.write_text(cluster_id)
        self._tool(
            java,
            classpath,
            [
                "format",
                "-t",
                cluster_id_file.read_text().strip(),
                "-c",
                str(props),
                "--ignore-formatted",
            ],
        )

    def _tool(self, java: str, classpath: str, args: list[str]) -> str:
        argv = [java, "-Xmx256m", "-cp", classpath, "kafka.tools.StorageTool", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            self.log_path().write_text(done.stdout + done.stderr)
            raise StackError(
                self.name, f"kafka-storage {args[0]} failed", self.fix, log_tail(self.log_path())
            )
        return done.stdout


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "kafka",
            "java is not on PATH",
            "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)",
        )
    return java
