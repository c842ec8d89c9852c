"""Deployment manifests for one long-running CDC connector: a systemd unit or a Kubernetes
Deployment (``mesh cdc manifest <database> --format systemd|kubernetes``).

Both run the command the platform's supervisor runs (:func:`datamesh.cdc.supervisor.command`:
``python -m datamesh.cdc --database ... --tables ... --bootstrap ... --registry ...``), with only
the interpreter and the status file's path changed for the target. Endpoints that are not secret
(bootstrap servers, registry URL) are on that command line, as the supervisor puts them.

Secrets are never written into a manifest, only referenced: the source DSN (``MESH_CDC_DSN``,
which the connector reads instead of ``--dsn``), the Kafka SASL and SSL key passwords and the
registry's ``user:password`` (:data:`SECRET_VARS`) come from the unit's ``EnvironmentFile=`` or
from ``secretKeyRef`` entries of a Kubernetes Secret. Kafka security settings that are not
secret (protocol, mechanism, user name, certificate paths) are copied from the rendering
environment when set there.

Health: the connector's status file, judged by ``python -m datamesh.cdc health``
(:mod:`datamesh.cdc.health`) — the Deployment's startup, readiness and liveness exec probes;
the unit's ``ExecStartPost=``, so it becomes active once the connector streams, like
``mesh cdc start`` waits for it. The status file lives where a restart starts it afresh (the
container's own filesystem; the unit's ``RuntimeDirectory=``), so an old file never speaks for
a new process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from datamesh.cdc.config import DSN_ENV, ConnectorConfig
from datamesh.cdc.supervisor import command
from datamesh.endpoints import REGISTRY_USER_INFO_VAR
from datamesh.kafka_config import SECRET_KEYS, SECURITY_ENV

Format = Literal["systemd", "kubernetes"]
FORMATS: tuple[Format, ...] = ("systemd", "kubernetes")
SECRET_VARS: tuple[str, ...] = (
    DSN_ENV,  # required: the source server's DSN, password included
    *(SECURITY_ENV[k] for k in sorted(SECRET_KEYS)),
    REGISTRY_USER_INFO_VAR,
)
PLAIN_VARS: tuple[str, ...] = tuple(v for k, v in SECURITY_ENV.items() if k not in SECRET_KEYS)
START_WAIT_S = 90  # as long as `mesh cdc start` waits for a connector to stream


@dataclass(frozen=True)
class Target:
    """Where the connector runs: ``python`` runs ``datamesh`` there (the unit's host venv, or
    the image's interpreter); ``env_file`` (systemd) and ``secret`` (Kubernetes) hold the
    secrets; ``image`` and ``namespace`` are the Deployment's."""

    python: str
    env_file: str
    secret: str
    image: str
    namespace: str | None = None


def status_file(fmt: Format, name: str) -> PurePosixPath:
    """Where the connector ``name`` writes its status under ``fmt``: fresh after a restart."""
    if fmt == "systemd":
        return PurePosixPath("/run/datamesh") / name / "status.json"  # RuntimeDirectory
    return PurePosixPath("/tmp/datamesh") / name / "status.json"  # the container's own fs


def connector_argv(config: ConnectorConfig, fmt: Format, python: str) -> list[str]:
    """The supervisor's command for ``config`` with ``python`` and ``fmt``'s status file."""
    argv = command(replace(config, status_file=Path(status_file(fmt, config.name))))
    return [python, *argv[1:]]


def health_argv(config: ConnectorConfig, fmt: Format, python: str, *flags: str) -> list[str]:
    """The health check of ``config``'s connector (``flags``: ``--ready``, ``--wait-s N``)."""
    path = str(status_file(fmt, config.name))
    return [python, "-m", "datamesh.cdc", "health", "--status-file", path, *flags]


def plain_environment(settings: Mapping[str, str | None]) -> dict[str, str]:
    """The connector's environment that is not secret: unbuffered output, and the Kafka
    security settings of :data:`PLAIN_VARS` that ``settings`` (the rendering environment) has."""
    found = {var: settings[var] for var in PLAIN_VARS if settings.get(var)}
    return {"PYTHONUNBUFFERED": "1", **{k: v for k, v in found.items() if v is not None}}


def render(
    fmt: Format, config: ConnectorConfig, target: Target, settings: Mapping[str, str | None]
) -> str:
    """The manifest of ``config``'s connector in ``fmt``. Pure."""
    if fmt == "systemd":
        return systemd_unit(config, target, settings)
    return kubernetes_deployment(config, target, settings)


# -- systemd -------------------------------------------------------------------------------------


def _unit_word(arg: str) -> str:
    """One argument of an ``Exec*=`` line: ``%`` and ``$`` escaped (systemd specifiers and
    variable expansion), double-quoted when it holds whitespace or quotes."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\]", text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _exec_line(argv: list[str]) -> str:
    return " ".join(_unit_word(a) for a in argv)


def systemd_unit(
    config: ConnectorConfig, target: Target, settings: Mapping[str, str | None]
) -> str:
    """A ``.service`` unit running ``config``'s connector (restarted on failure, not after a
    terminal error: exit code 2, whose fix is in its status, as the supervisor does)."""
    name = config.name
    env = " ".join(_unit_word(f"{k}={v}") for k, v in plain_environment(settings).items())
    wait = ["--ready", "--wait-s", str(START_WAIT_S)]
    lines = [
        f"# {name}: CDC connector of PostgreSQL database {config.database} (domain "
        f"{config.domain}): {', '.join(config.tables)}",
        f"# Rendered by `mesh cdc manifest {config.database} --format systemd`. "
        f"{target.env_file} (mode 0600) holds",
        f"# {DSN_ENV}=<the server's DSN> (required) and, when used, " + ", ".join(SECRET_VARS[1:]),
        "",
        "[Unit]",
        f"Description=Data mesh CDC connector {name}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"EnvironmentFile={target.env_file}",
        f"Environment={env}",
        f"RuntimeDirectory=datamesh/{name}",
        f"ExecStart={_exec_line(connector_argv(config, 'systemd', target.python))}",
        f"ExecStartPost={_exec_line(health_argv(config, 'systemd', target.python, *wait))}",
        f"TimeoutStartSec={START_WAIT_S + 30}",
        "Restart=on-failure",
        "RestartSec=5",
        "RestartPreventExitStatus=2",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=60",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


# -- Kubernetes ----------------------------------------------------------------------------------


def k8s_name(name: str) -> str:
    """``name`` as a DNS-1123 label (Kubernetes object names): lower case, ``_`` -> ``-``."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:63]


def _probe(argv: list[str], period_s: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": argv},
        "periodSeconds": period_s,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _env(target: Target, settings: Mapping[str, str | None]) -> list[dict[str, Any]]:
    plain = [{"name": k, "value": v} for k, v in plain_environment(settings).items()]
    secrets = [
        {
            "name": var,
            "valueFrom": {
                "secretKeyRef": {"name": target.secret, "key": var, "optional": var != DSN_ENV}
            },
        }
        for var in SECRET_VARS
    ]
    return plain + secrets


def deployment(
    config: ConnectorConfig, target: Target, settings: Mapping[str, str | None]
) -> dict[str, Any]:
    """The ``apps/v1`` Deployment of ``config``'s connector, as a dict."""
    name = k8s_name(config.name)
    labels = {
        "app.kubernetes.io/name": "datamesh-cdc",
        "app.kubernetes.io/instance": name,
        "datamesh/domain": k8s_name(config.domain),
        "datamesh/database": k8s_name(config.database),
    }
    python = target.python
    container = {
        "name": "connector",
        "image": target.image,
        "command": connector_argv(config, "kubernetes", python),
        "env": _env(target, settings),
        # startup: up to 5 minutes to reach streaming; ready: streaming (or paused);
        # alive: not failed, status fresh while streaming
        "startupProbe": _probe(health_argv(config, "kubernetes", python, "--ready"), 5, 60),
        "readinessProbe": _probe(health_argv(config, "kubernetes", python, "--ready"), 10, 3),
        "livenessProbe": _probe(health_argv(config, "kubernetes", python), 10, 3),
    }
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if target.namespace:
        metadata["namespace"] = target.namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            # never two connectors on one slot: the old pod is gone before the new one starts
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
            "template": {
                "metadata": {"labels": dict(labels)},  # a copy: no YAML anchor
                "spec": {
                    "terminationGracePeriodSeconds": 60,  # SIGTERM: drain, confirm, exit
                    "containers": [container],
                },
            },
        },
    }


def kubernetes_deployment(
    config: ConnectorConfig, target: Target, settings: Mapping[str, str | None]
) -> str:
    """:func:`deployment` as YAML, with a header naming the Secret it reads."""
    header = (
        f"# {config.name}: rendered by `mesh cdc manifest {config.database} --format kubernetes`.\n"
        f"# Secret {target.secret} holds {DSN_ENV} (required) and, when used, "
        f"{', '.join(SECRET_VARS[1:])}.\n"
    )
    return header + yaml.safe_dump(deployment(config, target, settings), sort_keys=False)
