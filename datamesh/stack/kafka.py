"""Embedded Apache Kafka 4.x: one combined broker+controller (KRaft) from Maven-resolved jars."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from datamesh import endpoints
from datamesh.endpoints import Record
from datamesh.errors import StackError
from datamesh.kafka_config import SECURITY_ENV
from datamesh.process import free_port, log_tail, port_open, spawn
from datamesh.stack.component import Component
from datamesh.stack.paths import jars_dir

CLUSTER_ID_FILE = "cluster.id"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
EMBEDDED_SASL_ENV = endpoints.EMBEDDED_SASL_VAR
EMBEDDED_SASL_USERS_ENV = endpoints.EMBEDDED_SASL_USERS_VAR
EMBEDDED_AUTHORIZER_ENV = endpoints.EMBEDDED_AUTHORIZER_VAR
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Who the broker sees on its PLAINTEXT listeners (clients, inter-broker and controller traffic).
ANONYMOUS = "User:ANONYMOUS"
_USERNAME = re.compile(r"^[A-Za-z0-9._-]+$")

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


@dataclass(frozen=True)
class SaslListener:
    """An extra ``SASL_PLAINTEXT`` listener (mechanism PLAIN) accepting the platform's user and
    the ``others`` (name, password) listed in ``MESH_KAFKA_EMBEDDED_SASL_USERS``."""

    port: int
    username: str
    password: str = field(repr=False)
    others: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @staticmethod
    def wanted() -> bool:
        """True when ``MESH_KAFKA_EMBEDDED_SASL`` asks for the listener."""
        return endpoints.flag(EMBEDDED_SASL_ENV)

    @classmethod
    def from_env(cls, port: int) -> SaslListener | None:
        """With ``MESH_KAFKA_EMBEDDED_SASL=1``: a listener for the user of
        ``MESH_KAFKA_SASL_USERNAME``/``_PASSWORD`` (opt-in, so credentials exported for another
        cluster never reach the embedded broker's files)."""
        if not cls.wanted():
            return None
        username = endpoints.setting(SECURITY_ENV["sasl.username"])
        password = endpoints.setting(SECURITY_ENV["sasl.password"])
        if not (username and password):
            raise StackError(
                "kafka",
                f"{EMBEDDED_SASL_ENV} asks for a SASL listener but no credentials are set",
                f"export {SECURITY_ENV['sasl.username']} and {SECURITY_ENV['sasl.password']}",
            )
        if not _fits_jaas(username, password):
            raise StackError(
                "kafka",
                "the SASL credentials for the embedded broker do not fit its JAAS line: "
                f"{_JAAS_RULE}",
                f"choose other values for {SECURITY_ENV['sasl.username']} / "
                f"{SECURITY_ENV['sasl.password']}",
            )
        return cls(port, username, password, _other_users())

    def properties(self) -> list[str]:
        """The broker settings of this listener (the file holding them is mode 0600)."""
        users = " ".join(
            f'user_{n}="{p}"' for n, p in [(self.username, self.password), *self.others]
        )
        return [
            "sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_MODULE} required {users};",
        ]


_JAAS_RULE = (
    "a username must be letters, digits, '.', '_' or '-', and a password must not contain a "
    "quote, a backslash or a line break"
)


def _fits_jaas(username: str, password: str) -> bool:
    return bool(_USERNAME.match(username)) and not any(c in password for c in '"\\\n\r')


def _other_users() -> tuple[tuple[str, str], ...]:
    """``MESH_KAFKA_EMBEDDED_SASL_USERS`` (``name:password,...``) as (name, password) pairs."""
    pairs = []
    for entry in filter(None, (endpoints.setting(EMBEDDED_SASL_USERS_ENV) or "").split(",")):
        name, _, password = entry.strip().partition(":")
        if not (password and _fits_jaas(name, password)):
            raise StackError(
                "kafka",
                f"{EMBEDDED_SASL_USERS_ENV} lists user {name!r} (password not shown), which is "
                f"not name:password ({_JAAS_RULE}; entries are separated by commas)",
                f"write {EMBEDDED_SASL_USERS_ENV}=<name>:<password>,<name>:<password>",
            )
        pairs.append((name, password))
    return tuple(pairs)


def authorizer_wanted() -> bool:
    """True when ``MESH_KAFKA_EMBEDDED_AUTHORIZER`` asks the broker to enforce ACLs."""
    return endpoints.flag(EMBEDDED_AUTHORIZER_ENV)


def authorizer_properties(sasl: SaslListener | None) -> list[str]:
    """ACLs enforced by KRaft's StandardAuthorizer (needs the SASL listener to tell users apart).

    Super users: the PLAINTEXT listeners' ``User:ANONYMOUS`` (loopback only; the broker's own
    inter-broker and controller traffic and the platform's plaintext clients) and the platform's
    SASL user; every other SASL user reads only what an ACL grants it (no ACL means denied).
    """
    if sasl is None:
        raise StackError(
            "kafka",
            f"{EMBEDDED_AUTHORIZER_ENV} asks for ACLs, but without the SASL listener every "
            "client is the same anonymous super user",
            f"also export {EMBEDDED_SASL_ENV}=1 with the platform's SASL credentials",
        )
    return [
        f"authorizer.class.name={STANDARD_AUTHORIZER}",
        f"super.users={ANONYMOUS};User:{sasl.username}",
    ]


def server_properties(
    data_dir: Path,
    broker_port: int,
    controller_port: int,
    sasl: SaslListener | None = None,
    authorizer: bool = False,
) -> str:
    """``server.properties`` of a one-node combined KRaft cluster on loopback (``authorizer``:
    see :func:`authorizer_properties`)."""
    listeners = f"PLAINTEXT://127.0.0.1:{broker_port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if sasl is not None:
        listeners += f",SASL_PLAINTEXT://127.0.0.1:{sasl.port}"
        protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            # The static voter form lets ports change between restarts of the same data dir.
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={listeners},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={listeners}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            *(sasl.properties() if sasl else []),
            *(authorizer_properties(sasl) if authorizer else []),
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
    """Apache Kafka broker; endpoint is the bootstrap ``127.0.0.1:<port>``.

    With ``MESH_KAFKA_EMBEDDED_SASL=1``, ``MESH_KAFKA_SASL_USERNAME`` and
    ``MESH_KAFKA_SASL_PASSWORD`` set at ``mesh up``, the broker also serves a
    ``SASL_PLAINTEXT`` (PLAIN) listener accepting exactly that user, so
    the SASL path of every client (connector, Dagster, Flink) can be tried on one machine;
    ``mesh status`` shows it as ``kafka_sasl_bootstrap``. Point clients at it with
    ``MESH_KAFKA_BOOTSTRAP`` plus ``MESH_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` and
    ``MESH_KAFKA_SASL_MECHANISM=PLAIN``. ``MESH_KAFKA_EMBEDDED_SASL_USERS`` adds more users to
    that listener and ``MESH_KAFKA_EMBEDDED_AUTHORIZER=1`` makes the broker enforce ACLs for
    them (:func:`authorizer_properties`), so the ACLs ``mesh apply`` grants can be tried too.
    """

    name = "kafka"
    status_key = "kafka_bootstrap"
    deadline_s = 90.0
    fix = "check that `make jars` ran and that Java 17+ is on PATH"

    def start(self) -> Record:
        java = _java()
        classpath = self._classpath()
        roles = ["broker", "controller", *(["sasl"] if SaslListener.wanted() else [])]
        broker, controller, *sasl_port = self.ports(roles, fresh=free_port)
        sasl = SaslListener.from_env(sasl_port[0]) if sasl_port else None
        data = self.home / "data"
        props = self.home / "server.properties"
        log4j = self.home / "log4j2.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(
            props, server_properties(data, broker, controller, sasl, authorizer_wanted())
        )
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
        ports = [broker, controller, *([sasl.port] if sasl else [])]
        extra = {"sasl_bootstrap": f"127.0.0.1:{sasl.port}"} if sasl else {}
        return Record(
            self.name, f"127.0.0.1:{broker}", [pid], ports, str(self.log_path()), extra=extra
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


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (it may hold the SASL listener's password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "kafka",
            "java is not on PATH",
            "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)",
        )
    return java
