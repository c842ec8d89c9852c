"""The embedded stack: real endpoints answer, up is idempotent, failures explain themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__

from datamesh.endpoints import ENV_VARS, Record
from datamesh.errors import StackError
from datamesh.kafka_config import SECURITY_ENV
from datamesh.process import alive, free_port, port_open, wait_until
from datamesh.stack import stack, state
from datamesh.stack.kafka import EMBEDDED_SASL_ENV, Kafka
from datamesh.stack.postgres import SERVICE_USER, Postgres

pytestmark = pytest.mark.integration


def test_status_json_endpoints_answer(mesh_stack: dict[str, Record]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "datamesh.cli", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    status = json.loads(out.stdout)
    for key in (
        "kafka_bootstrap",
        "postgres_dsn",
        "flink_rest_url",
        "schema_registry_url",
        "dagster_url",
        "dagster_home",
    ):
        assert key in status
    admin = AdminClient({"bootstrap.servers": status["kafka_bootstrap"]})
    assert admin.list_topics(timeout=10).brokers
    with psycopg2.connect(status["postgres_dsn"]) as conn, conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone() == ("logical",)
    conn.close()
    overview = requests.get(f"{status['flink_rest_url']}/overview", timeout=10).json()
    assert overview["taskmanagers"] >= 1
    # job details are cached 1 s, not Flink's default 3 s (a deployment waits on them)
    config = requests.get(f"{status['flink_rest_url']}/config", timeout=10).json()
    assert config["refresh-interval"] == 1000, config
    assert all(status["components"][c]["healthy"] for c in ("kafka", "postgres", "flink"))
    assert all(status["components"][c]["rss_mb"] > 0 for c in ("kafka", "postgres", "flink"))


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}


def _listening_hosts(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on ``port`` (``ss``)."""
    out = subprocess.run(
        ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines()]


def test_listening_hosts_sees_who_listens_where() -> None:
    with socket.socket() as loopback, socket.socket() as everywhere:
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()
        everywhere.bind(("0.0.0.0", 0))
        everywhere.listen()
        assert _listening_hosts(loopback.getsockname()[1]) == ["127.0.0.1"]
        assert _listening_hosts(everywhere.getsockname()[1]) == ["0.0.0.0"]
    assert _listening_hosts(free_port()) == []  # nobody listens: no host at all


def test_services_bind_loopback_only(mesh_stack: dict[str, Record]) -> None:
    records = state.load()  # not the fixture's records: fault tests restart components
    for record in (r for r in records.values() if not r.external):
        assert record.ports, record
        for port in record.ports:
            hosts = _listening_hosts(port)
            assert hosts, f"{record.name} port {port}: nothing listens there"
            assert set(hosts) <= LOOPBACK, f"{record.name} port {port} listens on {hosts}"


def test_a_stack_failing_halfway_is_stopped_by_the_session_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real broker starts, the next component fails: the fixture's up_or_down stops the
    broker (pytest runs no teardown for a fixture whose set-up raised)."""
    from datamesh.stack import stack as stack_module
    from tests.integration.conftest import up_or_down

    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    for name, var in ENV_VARS.items():  # only Kafka and PostgreSQL are embedded here
        if name in ("kafka", "postgres"):
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, f"http://127.0.0.1:9/not-started-by-{tmp_path.name}")
    started: list[Record] = []

    class RecordedKafka(Kafka):
        def start(self) -> Record:
            started.append(super().start())
            return started[-1]

    class BrokenPostgres(Postgres):
        def start(self) -> Record:
            raise StackError(self.name, "cannot start (test)", "none: the test breaks it")

    types = (RecordedKafka, BrokenPostgres, *stack_module.COMPONENT_TYPES[2:])
    monkeypatch.setattr(stack_module, "COMPONENT_TYPES", types)
    lines: list[str] = []
    try:
        with pytest.raises(StackError, match="cannot start") as info:
            up_or_down(progress=lines.append)
        assert info.value.component == "postgres"
        [kafka] = started
        assert kafka.pids and kafka.ports
        assert any(line.startswith("kafka") and "stopping" in line for line in lines), lines
        assert not any(alive(pid) for pid in kafka.pids)
        assert not any(port_open(port) for port in kafka.ports)
        assert state.load() == {}
    finally:  # should the test fail, leave no broker behind either
        stack_module.down(progress=lambda line: None)


def test_up_twice_is_harmless(mesh_stack: dict[str, Record]) -> None:
    lines: list[str] = []
    before = state.load()  # not the fixture's records: fault tests restart the TaskManager
    again = stack.up(progress=lines.append)
    for name, record in before.items():
        assert again[name].endpoint == record.endpoint
        assert again[name].pids == record.pids
    assert not any("starting" in line for line in lines), lines


def test_kafka_start_and_stop_leave_nothing_behind(tmp_path: Path) -> None:
    kafka = Kafka(tmp_path)
    record = kafka.start()
    wait_until(
        "kafka",
        lambda: kafka.ready(record.endpoint),
        kafka.deadline_s,
        kafka.log_path(),
        record.pids[0],
    )
    kafka.stop(record)
    assert not alive(record.pids[0])
    assert not any(port_open(p) for p in record.ports)


def test_missing_jars_fail_with_component_cause_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_JARS_DIR", str(tmp_path / "no-jars"))
    with pytest.raises(StackError) as info:
        Kafka(tmp_path).start()
    assert info.value.component == "kafka"
    assert "no Kafka jars" in info.value.cause
    assert "make jars" in str(info.value)


def test_port_taken_fails_with_the_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datamesh.stack.kafka as kafka_module

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = iter([port])  # the broker's port is taken; the others are free
        monkeypatch.setattr(kafka_module, "free_port", lambda: next(ports, None) or free_port())
        kafka = Kafka(tmp_path)
        record = kafka.start()
        try:
            with pytest.raises(StackError) as info:
                wait_until(
                    "kafka",
                    lambda: kafka.ready(record.endpoint),
                    60,
                    kafka.log_path(),
                    record.pids[0],
                )
        finally:
            kafka.stop(record)
    assert info.value.component == "kafka"
    assert "exited during start-up" in info.value.cause
    assert "Address already in use" in info.value.log_tail


def test_dagster_dev_serves_the_code_location_and_mesh_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datamesh.stack import dagster_dev

    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    port = free_port()
    code = f"from datamesh.stack import dagster_dev; dagster_dev.exec_dagster_dev({port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def assets_loaded() -> bool:
        query = "{ assetNodes { assetKey { path } owners { ... on TeamAssetOwner { team } } } }"
        try:
            nodes = requests.post(f"{url}/graphql", json={"query": query}, timeout=5).json()[
                "data"
            ]["assetNodes"]
        except (requests.RequestException, KeyError, TypeError, ValueError):
            return False
        return any(n["assetKey"]["path"] == ["studio", "movies"] and n["owners"] for n in nodes)

    try:
        wait_until("dagster", assets_loaded, 120, tmp_path / "none.log", proc.pid)
        assert dagster_dev.recorded_url() == url
        dagster_dev.stop(lambda line: None)
        proc.wait(timeout=10)
        assert not port_open(port)
        assert not dagster_dev.pid_file().exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def _round_trip(bootstrap: str) -> None:
    """Create a topic, produce one message and read it back through ``bootstrap``."""
    topic = f"restart_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"still here")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                assert msg.value() == b"still here"
                return
        raise AssertionError(f"nothing consumed from {topic} at {bootstrap}")
    finally:
        consumer.close()


def _bind_when_free(sock: socket.socket, port: int, timeout_s: float = 15.0) -> None:
    """Bind ``port`` once the killed broker's sockets let go of it (the kernel closes them
    asynchronously after SIGKILL)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock.bind(("127.0.0.1", port))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _kill_broker(record: Record) -> None:
    os.kill(record.pids[0], signal.SIGKILL)
    wait_until("kafka", lambda: not alive(record.pids[0]), 30, Path(record.log))


def test_broker_restarted_after_a_crash_keeps_its_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 the broker, `mesh up`: same bootstrap (and controller, SASL) address, and clients
    pointed at it work again; a recorded port that was taken meanwhile moves, and a line says so.
    """
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    for name, var in ENV_VARS.items():  # a private stack of one broker: the rest is "external"
        if name == "kafka":
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, f"http://127.0.0.1:9/not-started-by-{tmp_path.name}")
    monkeypatch.setenv(EMBEDDED_SASL_ENV, "1")  # three listeners to keep
    monkeypatch.setenv(SECURITY_ENV["sasl.username"], "restart-test")
    monkeypatch.setenv(SECURITY_ENV["sasl.password"], uuid.uuid4().hex)
    lines: list[str] = []
    try:
        first = stack.up(progress=lines.append)["kafka"]
        assert len(first.ports) == 3, first
        _kill_broker(first)

        lines.clear()
        second = stack.up(progress=lines.append)["kafka"]
        assert second.pids != first.pids
        assert second.endpoint == first.endpoint
        assert second.ports == first.ports
        assert second.extra == first.extra  # the SASL bootstrap too
        assert not any("taken" in line for line in lines), lines
        assert state.load()["kafka"].endpoint == first.endpoint
        _round_trip(first.endpoint)

        _kill_broker(second)
        with socket.socket() as squatter:  # another program took the broker's port meanwhile
            _bind_when_free(squatter, first.ports[0])
            squatter.listen()
            lines.clear()
            third = stack.up(progress=lines.append)["kafka"]
        assert third.endpoint != first.endpoint
        assert third.ports[1:] == first.ports[1:]
        moved = f"broker port {first.ports[0]} was taken: now on {third.ports[0]}"
        assert any(moved in line for line in lines), lines
        _round_trip(third.endpoint)
    finally:
        stack.down(progress=lambda line: None)


def test_postgres_starts_with_mesh_home_in_a_private_directory(tmp_path: Path) -> None:
    """MESH_HOME inside a mode-0700 directory (root's home, `mktemp -d`): as root the server
    user cannot enter it, yet PostgreSQL starts, keeps its data and its port across a restart."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    pg = Postgres(private / "mesh-home")
    record = pg.start()
    cluster = pg.cluster_dir()
    try:
        wait_until("postgres", lambda: pg.ready(record.endpoint), pg.deadline_s, pg.log_path())
        with psycopg2.connect(record.endpoint) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (7)")
        conn.close()
        if os.geteuid() == 0:  # the cluster is where the server user reaches it, linked from home
            assert private not in cluster.parents
            assert (private / "mesh-home" / "postgres" / "cluster").resolve() == cluster
            assert Path(record.extra["data_dir"]).owner() == SERVICE_USER
        pg.stop(record)
        port = record.ports[0]
        assert not port_open(port)

        again = Postgres(private / "mesh-home")
        again.recorded_ports = list(record.ports)
        record = again.start()
        assert again.cluster_dir() == cluster
        wait_until("postgres", lambda: again.ready(record.endpoint), 60, again.log_path())
        with psycopg2.connect(record.endpoint) as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM kept")
            assert cur.fetchall() == [(7,)]
        conn.close()
        assert record.ports == [port] and f":{port}/" in record.endpoint
        assert again.notes == []
    finally:
        pg.stop(record)
        if cluster != pg.home:
            shutil.rmtree(cluster, ignore_errors=True)
    assert not alive(pg.postmaster_pid())
