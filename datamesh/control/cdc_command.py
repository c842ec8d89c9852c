"""``mesh cdc``: the CDC connectors of the declarations, one per (domain, source database).

- ``mesh cdc start|stop|status``: every connector (start: following the declared tables);
- ``mesh cdc health <database> [--ready]``: exit 0 when the connector of ``<database>`` (started
  by ``mesh``, under ``<MESH_HOME>/cdc/``) is healthy, 1 otherwise (:mod:`datamesh.cdc.health`);
- ``mesh cdc manifest <database> --format systemd|kubernetes``: a unit or a Deployment that runs
  that connector as a long-running process elsewhere (:mod:`datamesh.cdc.manifest`).

``<database>`` is a source database named by some ``source.database`` (or a connector name,
``<domain>-<database>-cdc``, when two domains read the same database).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from datamesh import endpoints
from datamesh.cdc import health, manifest, running
from datamesh.control import connectors
from datamesh.control.connector_apply import converge
from datamesh.errors import TerminalError
from datamesh.specs.product import DataProduct


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """The sub-commands of ``mesh cdc``."""
    actions = sub.add_subparsers(dest="action", required=True)
    for name, text in (
        ("start", "start every declared connector (following the declared tables)"),
        ("stop", "stop every connector"),
        ("status", "state, lag and events of every connector"),
    ):
        actions.add_parser(name, help=text)
    probe = actions.add_parser("health", help="exit 0 when a connector is healthy, else 1")
    probe.add_argument("database", help="source database (or connector name)")
    probe.add_argument("--ready", action="store_true", help="also require it to stream")
    probe.add_argument(
        "--max-age-s",
        type=float,
        default=health.STALE_S,
        help="seconds after which a streaming connector's status means hung (15)",
    )
    render = actions.add_parser("manifest", help="a systemd unit or Kubernetes Deployment")
    render.add_argument("database", help="source database (or connector name)")
    render.add_argument(
        "--format", choices=manifest.FORMATS, required=True, help="a unit or a Deployment"
    )
    render.add_argument(
        "--python",
        help="interpreter with datamesh installed (default: "
        "this one for systemd, `python` in the image for kubernetes)",
    )
    render.add_argument(
        "--env-file", help="systemd: the secrets' file (default /etc/datamesh/<connector>.env)"
    )
    render.add_argument("--secret", help="kubernetes: the Secret's name (default <connector>)")
    render.add_argument("--image", default="datamesh:latest", help="kubernetes: the image")
    render.add_argument("--namespace", help="kubernetes: the Deployment's namespace")


def run(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    """``mesh cdc ...``."""
    if args.action == "health":
        return _health(args, products)
    if args.action == "manifest":
        print(_manifest(args, products), end="")
        return 0
    for spec in connectors.plan(products):
        if args.action == "start":  # follows the declarations: adds and drops tables
            cfg = connectors.config(
                spec,
                endpoints.endpoint("postgres"),
                endpoints.endpoint("kafka"),
                endpoints.endpoint("schema_registry"),
            )
            converge(spec, cfg, connectors.products_by_table(spec, products).get)
        elif args.action == "stop":
            running.stop(spec.name)
        _print_status(spec)
    return 0


def _print_status(spec: connectors.ConnectorSpec) -> None:
    current = running.status(spec.name) or {}
    state = current.get("state", "not started") if running.pid_of(spec.name) else "stopped"
    print(
        f"{spec.name:24} {state:10} tables {', '.join(spec.tables)}; "
        f"lag {current.get('slot_lag_bytes')} bytes; events {current.get('events_sent', 0)}"
    )
    print(f"{'':24} {running.describe(spec.name)}")
    if current.get("error"):
        print(f"{'':24} error: {current['error']}")


def find(database: str, products: Sequence[DataProduct]) -> connectors.ConnectorSpec:
    """The one connector of ``database`` (a source database or a connector name)."""
    specs = connectors.plan(products)
    found = [s for s in specs if database in (s.database, s.name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise TerminalError(
            f"{len(found)} connectors read database {database!r}",
            fix=f"name one of them: {', '.join(s.name for s in found)}",
        )
    known = ", ".join(sorted({s.database for s in specs})) or "none declared"
    raise TerminalError(f"no CDC product reads a database {database!r}", fix=f"use one of: {known}")


def _health(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    spec = find(args.database, products)
    status = running.status(spec.name)
    why = health.judge(status, time.time(), ready=args.ready, max_age_s=args.max_age_s)
    if why is None:
        print(f"{spec.name}: healthy ({(status or {}).get('state')})")
        return 0
    print(f"{spec.name}: unhealthy: {why}", file=sys.stderr)
    return 1


def _manifest(args: argparse.Namespace, products: Sequence[DataProduct]) -> str:
    spec = find(args.database, products)
    # the DSN stays out: the connector reads it from MESH_CDC_DSN, a secret reference
    cfg = connectors.config(
        spec, "", endpoints.endpoint("kafka"), endpoints.endpoint("schema_registry")
    )
    target = manifest.Target(
        python=args.python or (sys.executable if args.format == "systemd" else "python"),
        env_file=args.env_file or f"/etc/datamesh/{spec.name}.env",
        secret=args.secret or manifest.k8s_name(spec.name),
        image=args.image,
        namespace=args.namespace,
    )
    settings = {var: endpoints.setting(var) for var in manifest.PLAIN_VARS}
    return manifest.render(args.format, cfg, target, settings)
