"""The embedded stack: real endpoints answer, up is idempotent, failures explain themselves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import requests
from confluent_kafka.admin import AdminClient

from datamesh.errors import StackError
from datamesh.stack import stack, state
from datamesh.stack.component import Record
from datamesh.stack.kafka import Kafka
from datamesh.stack.process import alive, free_port, port_open, wait_until

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
    assert all(status["components"][c]["healthy"] for c in ("kafka", "postgres", "flink"))
    assert all(status["components"][c]["rss_mb"] > 0 for c in ("kafka", "postgres", "flink"))


def test_services_bind_loopback_only(mesh_stack: dict[str, Record]) -> None:
    for record in mesh_stack.values():
        if record.external:
            continue
        for port in record.ports:
            listening = subprocess.run(
                ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True
            ).stdout
            for line in listening.splitlines():
                local = line.split()[3]
                assert local.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "::ffff:127.0.0.1"), (
                    f"{record.name} port {port} listens on {local}"
                )


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
