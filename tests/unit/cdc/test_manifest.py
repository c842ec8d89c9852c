"""``mesh cdc manifest``: the Kubernetes Deployment against the Kubernetes API schema, the
systemd unit by parsing; both run the command the supervisor runs, and hold no secret."""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from datamesh import cli, endpoints
from datamesh.cdc import cli as cdc_cli
from datamesh.cdc import manifest, supervisor
from datamesh.cdc.config import ConnectorConfig
from datamesh.control import connectors
from datamesh.specs import load_products

SECRET_DSN = "postgresql://cdc:s3cr3t-dsn@db.internal:5432/postgres"
SECRETS = {
    "MESH_CDC_DSN": SECRET_DSN,
    "MESH_POSTGRES_DSN": SECRET_DSN,
    "MESH_KAFKA_SASL_PASSWORD": "s3cr3t-sasl",
    "MESH_SCHEMA_REGISTRY_USER_INFO": "svc:s3cr3t-registry",
}
PLAIN = {
    "MESH_KAFKA_BOOTSTRAP": "kafka-0.kafka:9092,kafka-1.kafka:9092",
    "MESH_SCHEMA_REGISTRY_URL": "http://registry.data:8081",
    "MESH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MESH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
}
SPECS = connectors.plan(load_products(endpoints.DEMO_DOMAINS_DIR))


@pytest.fixture(autouse=True)
def production_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # only these settings: `make test` runs the unit tests while the integration session's
    # fixture still exports its own MESH_* credentials (e.g. MESH_KAFKA_SASL_USERNAME)
    for var in [v for v in os.environ if v.startswith("MESH_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))  # no `mesh up` record to fall back on
    for var, value in {**SECRETS, **PLAIN}.items():
        monkeypatch.setenv(var, value)
    yield


def _render(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["cdc", "manifest", *argv]) == 0
    return capsys.readouterr().out


def _expected_command(spec: connectors.ConnectorSpec, fmt: manifest.Format) -> list[str]:
    """What `mesh cdc start` runs for ``spec`` (its supervisor's argv), status file moved."""
    cfg = connectors.config(
        spec, SECRET_DSN, PLAIN["MESH_KAFKA_BOOTSTRAP"], PLAIN["MESH_SCHEMA_REGISTRY_URL"]
    )
    moved = replace(cfg, status_file=Path(manifest.status_file(fmt, spec.name)))
    return supervisor.command(moved)[1:]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_deployment_is_valid_against_the_kubernetes_api_schema(
    spec: connectors.ConnectorSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _render(capsys, spec.database, "--format", "kubernetes", "--namespace", "data")
    doc = yaml.safe_load(text)
    # strict: an unknown or misspelled field fails too, not only a wrong type
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    assert doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == "data"
    assert doc["spec"]["replicas"] == 1
    assert doc["spec"]["strategy"] == {"type": "Recreate"}  # never two processes on one slot
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", *_expected_command(spec, "kubernetes")]
    assert set(doc["spec"]["selector"]["matchLabels"].items()) <= set(
        doc["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_deployment_references_secrets_and_never_holds_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _render(capsys, SPECS[0].database, "--format", "kubernetes", "--secret", "cdc-creds")
    for value in SECRETS.values():
        assert value not in text and "s3cr3t" not in text
    (container,) = yaml.safe_load(text)["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert set(refs) == set(manifest.SECRET_VARS)
    assert refs["MESH_CDC_DSN"] == {"name": "cdc-creds", "key": "MESH_CDC_DSN", "optional": False}
    assert all(r["optional"] for var, r in refs.items() if var != "MESH_CDC_DSN")
    plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert plain == {
        "PYTHONUNBUFFERED": "1",
        "MESH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MESH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    }


def test_the_probes_are_health_commands_the_connector_accepts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (container,) = yaml.safe_load(_render(capsys, SPECS[0].database, "--format", "kubernetes"))[
        "spec"
    ]["template"]["spec"]["containers"]
    probes = {k: container[k]["exec"]["command"] for k in container if k.endswith("Probe")}
    assert set(probes) == {"startupProbe", "readinessProbe", "livenessProbe"}
    assert "--ready" in probes["readinessProbe"] and "--ready" not in probes["livenessProbe"]
    status = container["command"][container["command"].index("--status-file") + 1]
    for argv in probes.values():
        assert argv[:4] == ["python", "-m", "datamesh.cdc", "health"]
        assert argv[argv.index("--status-file") + 1] == status  # the file the connector writes
        # the probe's arguments parse (argparse would exit 2); no status file yet -> exit 1
        moved = [str(tmp_path / "status.json") if a == status else a for a in argv[3:]]
        assert cdc_cli.main(moved) == 1


def _unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep case
    parser.read_string(text)
    return parser


def _unescape(word: str) -> str:
    """Undo systemd's ``%%`` and ``$$``; a lone ``%`` (a specifier) or ``$`` (a variable
    expansion) would be rewritten by systemd, so it fails here."""
    out, i = [], 0
    while i < len(word):
        char = word[i]
        if char in "%$":
            assert word[i + 1 : i + 2] == char, f"unescaped {char!r} in {word!r}"
            i += 1
        out.append(char)
        i += 1
    return "".join(out)


def _exec_argv(line: str) -> list[str]:
    """An ``Exec*=`` value as systemd splits it (quotes and escapes undone)."""
    return [_unescape(a) for a in shlex.split(line)]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_systemd_unit_parses_and_runs_the_supervisors_command(
    spec: connectors.ConnectorSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _render(capsys, spec.database, "--format", "systemd", "--python", "/opt/mesh/bin/python")
    unit = _unit(text)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    for key in (
        "Type",
        "ExecStart",
        "ExecStartPost",
        "EnvironmentFile",
        "Restart",
        "RuntimeDirectory",
    ):
        assert service.get(key), f"[Service] {key}= missing"
    assert _exec_argv(service["ExecStart"]) == [
        "/opt/mesh/bin/python",
        *_expected_command(spec, "systemd"),
    ]
    assert service["EnvironmentFile"] == f"/etc/datamesh/{spec.name}.env"
    # like the supervisor: restarted after a crash, not after a terminal error (exit 2)
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == str(supervisor.TERMINAL_EXIT)
    post = _exec_argv(service["ExecStartPost"])
    assert post[:4] == ["/opt/mesh/bin/python", "-m", "datamesh.cdc", "health"]
    status = Path(post[post.index("--status-file") + 1])
    assert status.parent == Path("/run") / service["RuntimeDirectory"]
    assert int(service["TimeoutStartSec"]) > int(post[post.index("--wait-s") + 1])
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    for value in SECRETS.values():
        assert value not in text
    assert "s3cr3t" not in text


ESCAPES = [
    "http://registry:8081/a%20b",
    "http://registry:8081/$HOME",
    "a b",
    'say "hi"',
    "back\\slash",
]


@pytest.mark.parametrize("registry", ESCAPES)
def test_exec_lines_escape_specifiers_variables_and_spaces(registry: str) -> None:
    spec = SPECS[0]
    cfg: ConnectorConfig = connectors.config(spec, "", "k:9092", registry)
    target = manifest.Target(python="/usr/bin/python3", env_file="/e", secret="s", image="i")
    unit = _unit(manifest.systemd_unit(cfg, target, {}))
    argv = _exec_argv(unit["Service"]["ExecStart"])
    assert argv[argv.index("--registry") + 1] == registry


def test_an_unknown_database_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cdc", "manifest", "nope", "--format", "systemd"]) == 1
    err = capsys.readouterr().err
    assert "no CDC product reads a database 'nope'" in err
    assert all(s.database in err for s in SPECS)


def test_the_format_is_required_and_closed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["cdc", "manifest", SPECS[0].database, "--format", "docker"])
