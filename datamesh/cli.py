"""``mesh``: the platform's command line.

mesh up | down | status [--json]     the embedded stack
mesh dev [--port 3000] [--rate 5/s]  up + demo (generator on) + validate, then `dagster dev`
mesh validate                        load and check every declaration
mesh plan [--json] [--exit-code]     what `apply` would change, with the consumers it affects
mesh apply [--allow-delete] [--repair]   bring the mesh to its declarations
mesh schema check <product>          diff against the registry and the verdict, no change
mesh demo [--rate 5/s] | --stop      seed the demo databases, keep changing them (background)
mesh cdc start|stop|status           CDC connectors (one per source database)
mesh cdc health <database> [--ready] exit 0 when that database's connector is healthy
mesh cdc manifest <database> --format systemd|kubernetes   run it as a long-running service
mesh snapshot <product> [--where]    on-demand DBLog snapshot of a table or key range
mesh flink deploy|validate|status|upgrade|stop|cancel <product>   processor / postgres_sink jobs
mesh catalog search <words> [--json] | show <product> [--json]   search and read product cards
mesh lineage [<product>] [--upstream|--downstream] [--field F] [--format text|json|dot]
mesh audit <product> [--json] [--repair]   compare a sink with its CDC source table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from datamesh import endpoints, names
from datamesh.errors import MeshError, TerminalError

if TYPE_CHECKING:
    from datamesh.specs.product import DataProduct


def _products() -> tuple[DataProduct, ...]:
    from datamesh.specs import load_products

    return load_products(endpoints.domains_dir())


def cmd_up(args: argparse.Namespace) -> int:
    from datamesh.stack import stack

    start = time.monotonic()
    print("starting the embedded stack (state in .mesh/; logs next to it)")
    stack.up()
    print(f"stack ready in {time.monotonic() - start:.1f}s — `mesh status` shows endpoints")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from datamesh.stack import stack

    leftovers = stack.down()
    if leftovers:
        print(f"still listening after stop: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print("stack stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from datamesh.stack import stack

    report = stack.status()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for comp, info in report["components"].items():
        state = "healthy" if info["healthy"] else "down"
        print(f"{comp:16} {state:8} {info['rss_mb']:>8} MB  pids {info['pids']}")
    for key, value in report.items():
        if key != "components":
            print(f"{key:20} {value or '-'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from datamesh.audit.declared import check_declared

    products = _products()
    check_declared(products)
    domains = sorted({p.domain for p in products})
    for domain in domains:
        owned = [p for p in products if p.domain == domain]
        print(f"{domain}: " + ", ".join(f"{p.name} ({p.kind})" for p in owned))
    print(f"{len(products)} products in {len(domains)} domains: all declarations are valid")
    from datamesh import lineage_graph

    for warning in lineage_graph.warnings(lineage_graph.build(products)):
        print(f"warning: {warning}", file=sys.stderr)  # valid, but a lineage hole to know about
    from datamesh.audit.auditability import analyse_all

    for result in analyse_all(products):
        print(f"audit: {result.describe()}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from datamesh.control import command

    return command.run_plan(args, _products())


def cmd_apply(args: argparse.Namespace) -> int:
    from datamesh.control import command

    return command.run_apply(args, _products())


def cmd_schema_check(args: argparse.Namespace) -> int:
    from datamesh.control import schemas
    from datamesh.schema_client import SchemaClient

    by_id = {p.id: p for p in _products()}
    product = by_id.get(args.product) or next(
        (p for p in by_id.values() if p.name == args.product), None
    )
    if product is None:
        print(
            f"error: no product {args.product!r}; known: {', '.join(sorted(by_id))}",
            file=sys.stderr,
        )
        return 1
    client = SchemaClient(endpoints.endpoint("schema_registry"))
    wanted = schemas.desired_schemas(product)
    if not wanted:
        print(f"{product.id}: its subjects are registered by its CDC connector from the table")
        return 0
    verdict = 0
    for want in wanted:
        latest = client.latest(want.subject)
        level = client.level(want.subject) or product.compatibility
        reasons = client.check(want.subject, want.schema)
        print(
            f"== {want.subject} (registered: "
            f"{f'version {latest.version}, id {latest.id}' if latest else 'nothing'}; "
            f"level {level})"
        )
        print(schemas.diff(latest.schema if latest else None, want.schema) or "(no change)")
        print(
            "verdict: " + ("compatible" if not reasons else "INCOMPATIBLE: " + "; ".join(reasons))
        )
        verdict |= bool(reasons)
    return verdict


def cmd_dev(args: argparse.Namespace) -> int:
    from datamesh.stack import dagster_dev

    cmd_up(args)
    cmd_demo(args)
    cmd_validate(args)
    _warm_sql_gateway()
    dagster_dev.exec_dagster_dev(args.port)  # replaces this process; returns only on error
    return 1


def _warm_sql_gateway() -> None:
    """Start :mod:`datamesh.flink.warmup` in the background (its own session: it outlives the
    exec into ``dagster dev`` and exits within seconds), so the first Flink deployment does not
    pay the gateway's cold planning; its output goes to ``<MESH_HOME>/sql_gateway/warmup.log``."""
    import subprocess

    log = endpoints.mesh_home() / "sql_gateway" / "warmup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        subprocess.Popen(
            [sys.executable, "-m", "datamesh.flink.warmup"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _product(name: str) -> tuple[DataProduct, tuple[DataProduct, ...]]:
    products = _products()
    found = next((p for p in products if name in (p.id, p.name)), None)
    if found is None:
        known = ", ".join(sorted(p.id for p in products))
        raise TerminalError(f"no product {name!r}", fix=f"use one of {known}")
    return found, products


def cmd_cdc(args: argparse.Namespace) -> int:
    from datamesh.control import cdc_command

    return cdc_command.run(args, _products())


def cmd_snapshot(args: argparse.Namespace) -> int:
    from datamesh.cdc import cli as cdc_cli

    product, _ = _product(args.product)
    if product.source is None:
        raise TerminalError(
            f"{product.id} is a {product.kind} product", fix="snapshot a cdc product"
        )
    argv = [
        "snapshot",
        "--dsn",
        endpoints.setting(endpoints.CDC_DSN_VAR) or endpoints.endpoint("postgres"),
        "--database",
        product.source.database,
        "--domain",
        product.domain,
        "--table",
        f"{product.source.schema}.{product.source.table}",
    ]
    return cdc_cli.main([*argv, *(["--where", args.where] if args.where else [])])


def cmd_flink(args: argparse.Namespace) -> int:
    from datamesh.control import inventory
    from datamesh.flink import FlinkJobs
    from datamesh.flink.declared import deploy_declared, job_for, upgrade_declared

    product, products = _product(args.product)
    jobs = FlinkJobs()
    name = names.flink_job(product)
    by_id = {p.id: p for p in products}
    if args.action in ("deploy", "upgrade"):
        deploy = deploy_declared if args.action == "deploy" else upgrade_declared
        status = deploy(jobs, product, by_id)
        inventory.record(product, products)  # started, as its asset records it (sensors judge it)
    elif args.action == "validate":
        plan = jobs.validate(job_for(product, by_id, jobs.conn))
        columns = ", ".join(f"{c} {t}" for c, t in plan.columns)
        print(f"{product.id}: valid; output columns {columns}")
        return 0
    elif args.action == "stop":
        status = jobs.stop_with_savepoint(name)
    elif args.action == "cancel":
        status = jobs.cancel(name)
    else:
        status = jobs.status(name)
    checkpoint = status.last_checkpoint.id if status.last_checkpoint else "-"
    savepoint = status.last_savepoint.path if status.last_savepoint else "-"
    print(
        f"{name}: {status.state} ({status.action}); restarts {status.restarts}; "
        f"checkpoint {checkpoint}; savepoint {savepoint}; in {status.records_in} "
        f"out {status.records_out}; dead letters {status.dead_letters}"
    )
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from datamesh import catalog
    from mesh_assets.cli_entry import catalog_health  # the one door into the Dagster layer

    return catalog.run(args, _products(), health=catalog_health)


def cmd_lineage(args: argparse.Namespace) -> int:
    from datamesh import lineage_graph

    return lineage_graph.run(args, _products())


def cmd_audit(args: argparse.Namespace) -> int:
    from datamesh.audit import command

    return command.run(args, _products())


def cmd_demo(args: argparse.Namespace) -> int:
    from datamesh.demo import generator, load_demo
    from datamesh.demo.rate import parse_rate

    if getattr(args, "stop", False):
        pid = generator.stop()
        print(f"demo generator stopped (pid {pid})" if pid else "no demo generator was running")
        return 0
    if getattr(args, "status", False):
        running_now = generator.info()
        print(json.dumps(running_now, indent=2) if running_now else "no demo generator runs")
        return 0 if running_now else 1
    per_second = parse_rate(args.rate)  # a bad rate fails before anything is changed
    loaded = load_demo(endpoints.endpoint("postgres"))
    print(f"demo source databases ready: {', '.join(loaded)}")
    record = generator.start(args.rate, per_second, args.schema_every)
    print(
        f"demo generator writing {args.rate} ({per_second:g} changes/s) in the background: "
        f"pid {record['pid']}, progress in {record['log']}; `mesh demo --stop` stops it"
    )
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "up": (cmd_up, "start the embedded stack (Kafka, PostgreSQL, registry, Flink)"),
    "down": (cmd_down, "stop everything `mesh up` started"),
    "status": (cmd_status, "endpoints and health of each component"),
    "validate": (cmd_validate, "load and check every data product declaration"),
    "plan": (cmd_plan, "every change `apply` would make, with its impact on consumers"),
    "apply": (cmd_apply, "validate everything, then bring the mesh to its declarations"),
    "demo": (
        cmd_demo,
        "seed the demo databases and keep changing them (`--rate 200/s`; `--stop`)",
    ),
    "dev": (
        cmd_dev,
        "up + demo + validate, then `dagster dev` on 127.0.0.1 (`mesh down` stops it)",
    ),
    "cdc": (
        cmd_cdc,
        "`mesh cdc start|stop|status` | `health <database>` | `manifest <database> --format ...`",
    ),
    "snapshot": (cmd_snapshot, "`mesh snapshot <product> [--where ...]`: DBLog snapshot"),
    "flink": (cmd_flink, "`mesh flink deploy|validate|status|upgrade|stop|cancel <product>`"),
    "schema": (cmd_schema_check, "`mesh schema check <product>`: diff and verdict, no change"),
    "catalog": (
        cmd_catalog,
        "`mesh catalog search <words> [--json]` | `mesh catalog show <product>`",
    ),
    "lineage": (
        cmd_lineage,
        "`mesh lineage [<product>] [--upstream|--downstream] [--field F] [--format ...]`",
    ),
    "audit": (cmd_audit, "`mesh audit <product> [--json] [--repair]`: sink vs CDC source"),
}


def parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per entry of COMMANDS)."""
    root = argparse.ArgumentParser(prog="mesh", description="Data mesh platform on Dagster")
    subs = root.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "dev":
            sub.add_argument("--port", type=int, default=3000, help="Dagster UI port")
        if name in ("dev", "demo"):
            from datamesh.demo.generator import DEFAULT_SCHEMA_EVERY_S
            from datamesh.demo.rate import DEFAULT_RATE

            sub.add_argument(
                "--rate", default=DEFAULT_RATE, help="demo changes: <n>/s, /m or /h (default 5/s)"
            )
            sub.add_argument(
                "--schema-every",
                type=float,
                default=DEFAULT_SCHEMA_EVERY_S,
                help="seconds between the demo's schema changes (ADD COLUMN); 0: none",
            )
        if name == "demo":
            sub.add_argument("--stop", action="store_true", help="stop the demo generator")
            sub.add_argument(
                "--status", action="store_true", help="the running generator's rate and counts"
            )
        if name == "cdc":
            from datamesh.control import cdc_command

            cdc_command.add_arguments(sub)
        if name == "snapshot":
            sub.add_argument("product", help="<domain>.<product> of a cdc product")
            sub.add_argument("--where", help="SQL filter: snapshot only this key range")
        if name == "flink":
            sub.add_argument(
                "action", choices=["deploy", "validate", "status", "upgrade", "stop", "cancel"]
            )
            sub.add_argument("product", help="<domain>.<product> of a processor or postgres_sink")
        if name == "schema":
            sub.add_argument("action", choices=["check"])
            sub.add_argument("product", help="<domain>.<product> or <product>")
        if name in ("plan", "apply"):
            from datamesh.control import command

            (command.add_plan_arguments if name == "plan" else command.add_apply_arguments)(sub)
        if name == "catalog":
            from datamesh import catalog

            catalog.add_arguments(sub)
        if name == "lineage":
            from datamesh import lineage_graph

            lineage_graph.add_arguments(sub)
        if name == "audit":
            from datamesh.audit import command as audit_command

            audit_command.add_arguments(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mesh`` command."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command][0](args)
    except MeshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mesh status | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
