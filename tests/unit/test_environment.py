"""Environment handling: SASL/SSL passthrough, secrets masked, endpoints from env or state."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh import endpoints
from datamesh.endpoints import Record
from datamesh.errors import ServiceUnavailable
from datamesh.kafka_config import client_config, safe_view
from datamesh.stack import state
from resources import resources_for


def test_sasl_ssl_settings_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MESH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "mesh")
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("MESH_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")
    config = client_config("b:9093")
    assert config == {
        "bootstrap.servers": "b:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "mesh",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert "s3cret" not in str(safe_view(config))


def test_explicit_values_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("MESH_KAFKA_SASL_USERNAME", "env-user")
    assert client_config("b:1", {"sasl.username": "explicit"})["sasl.username"] == "explicit"


def test_secret_is_wired_as_env_var_not_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_KAFKA_SASL_PASSWORD", "s3cret")
    kafka = resources_for()["kafka"]
    assert "s3cret" not in repr(kafka)
    assert "MESH_KAFKA_SASL_PASSWORD" in repr(kafka)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://mesh:s3cret@db:5432/x", "postgresql://mesh:***@db:5432/x"),
        ("host=db user=mesh password=s3cret", "host=db user=mesh password=***"),
        (
            "postgresql://postgres@127.0.0.1:5/postgres",
            "postgresql://postgres@127.0.0.1:5/postgres",
        ),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert endpoints.redact(text) == shown


def test_endpoint_prefers_env_then_state_then_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    monkeypatch.delenv("MESH_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(ServiceUnavailable, match="mesh up"):
        endpoints.endpoint("kafka")
    state.save({"kafka": Record("kafka", "127.0.0.1:1234")})
    assert endpoints.endpoint("kafka") == "127.0.0.1:1234"
    monkeypatch.setenv("MESH_KAFKA_BOOTSTRAP", "broker:9092")
    assert endpoints.endpoint("kafka") == "broker:9092"


def test_mesh_dev_writes_an_instance_config_dagster_accepts_and_keeps_the_users(
    tmp_path: Path,
) -> None:
    import dagster as dg

    from datamesh.stack.dagster_dev import ensure_instance_config

    path = ensure_instance_config(tmp_path / "dagster")
    with dg.DagsterInstance.from_config(str(path.parent)) as instance:
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 4  # type: ignore[attr-defined]
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
        assert instance.get_settings("sensors")["use_threads"] is True
        assert instance.get_settings("auto_materialize")["use_threads"] is True
        assert "datamesh.flink" in instance.get_settings("python_logs")["managed_python_loggers"]
        assert not instance.telemetry_enabled
    path.write_text("telemetry:\n  enabled: true\n")
    ensure_instance_config(path.parent)
    assert path.read_text() == "telemetry:\n  enabled: true\n"
