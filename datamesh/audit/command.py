"""``mesh audit <product> [--json] [--repair]``: audit one sink against its CDC source.

Exit code 0 when the audit passes, 1 when it fails (a difference older than the grace) or the
product cannot be audited. ``--repair`` re-captures the differing keys (DBLog snapshot), deletes
the extra ones, runs an Iceberg sink once, and audits again: the exit code is the second
audit's. Progress goes to stderr; the result to stdout (``--json``: one JSON document).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from datamesh import endpoints
from datamesh.audit.repair import repair_differences
from datamesh.audit.result import AuditResult
from datamesh.audit.sides import Progress
from datamesh.audit.target import AuditTarget, auditable_or_raise, run_audit, target_for
from datamesh.errors import TerminalError
from datamesh.specs.product import DataProduct

HELP = "`mesh audit <product> [--json] [--repair]`: compare a sink with its CDC source table"


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """The arguments of ``mesh audit``."""
    sub.add_argument("product", help="<domain>.<product> of an auditable sink")
    sub.add_argument("--json", action="store_true", help="machine-readable result")
    sub.add_argument(
        "--repair", action="store_true", help="re-capture the differing keys, then audit again"
    )


def _progress(what: str, done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"audit: {what} {done}/{total}", file=sys.stderr)


def target(name: str, products: Sequence[DataProduct]) -> tuple[AuditTarget, DataProduct]:
    """The audit target of product ``name`` (id or name) among ``products``."""
    by_id = {p.id: p for p in products}
    product = by_id.get(name) or next((p for p in products if p.name == name), None)
    if product is None:
        raise TerminalError(f"no product {name!r}", fix=f"use one of {', '.join(sorted(by_id))}")
    auditable_or_raise(product, by_id)  # before asking for any endpoint
    dsn = endpoints.setting(endpoints.CDC_DSN_VAR) or endpoints.endpoint("postgres")
    return target_for(product, by_id, dsn), product


def run(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    """``mesh audit``: print the result; 0 when it passed."""
    audit, product = target(args.product, products)
    result = run_audit(audit, progress=_progress)
    if args.repair and not result.passed:
        print(f"audit: repairing {len(result.comparison.differences)} keys", file=sys.stderr)
        result = repair_and_audit(audit, result, product, products, _progress)
    print(json.dumps(result.to_json(), indent=2, default=str) if args.json else result.text())
    return 0 if result.passed else 1


def repair_and_audit(
    audit: AuditTarget,
    result: AuditResult,
    product: DataProduct,
    products: Sequence[DataProduct],
    progress: Progress | None = None,
) -> AuditResult:
    """Repair what ``result`` found (an Iceberg sink is run once after the re-capture), then
    audit again; the second result records what the repair did."""
    by_id = {p.id: p for p in products}
    run_sink = (lambda: _run_iceberg_sink(product, by_id)) if audit.iceberg_table else None
    repaired = repair_differences(audit, result, run_sink=run_sink)
    again = run_audit(audit, progress=progress)
    again.repaired = repaired
    return again


def _run_iceberg_sink(product: DataProduct, by_id: dict[str, DataProduct]) -> object:
    from datamesh.kafka_config import client_config
    from datamesh.schema_client import SchemaClient
    from datamesh.sinks.catalog import open_catalog
    from datamesh.sinks.iceberg_sink import IcebergSink, sink_job

    sink = IcebergSink(
        open_catalog(),
        client_config(endpoints.endpoint("kafka")),
        SchemaClient(endpoints.endpoint("schema_registry")),
    )
    return sink.run(sink_job(product, by_id))
