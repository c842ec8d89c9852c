"""The ``audit`` check of auditable sinks, its declared schedule and the repair job.

- Every auditable sink (``mesh validate`` lists them) gets a non-blocking ``audit`` asset check:
  the sink compared with its CDC source table (:mod:`datamesh.audit`); the result's metadata has
  the counts and the first keys of each kind, and a failure names the owners.
- The job ``<domain>__<product>__audit`` runs the check alone; ``audit: {every: 1h}`` on the
  sink adds a sensor launching it at that interval (:mod:`sensors.audit_schedule`).
- The job ``<domain>__<product>__audit_repair``, launched from the UI, audits, repairs the keys
  found (``mesh audit --repair``) and audits again; it fails when the second audit does.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from datamesh import endpoints
from datamesh.audit.auditability import analyse
from datamesh.audit.command import repair_and_audit
from datamesh.audit.declared import check_declared
from datamesh.audit.result import AuditResult
from datamesh.audit.target import run_audit, target_for
from datamesh.specs.product import DataProduct
from mesh_assets import policy
from mesh_assets.checks import check_specs, severity

AUDIT = "audit"


def auditable(products: Sequence[DataProduct]) -> list[DataProduct]:
    """The sinks that can be audited (raises SpecError when one declares ``audit:`` and
    cannot be)."""
    check_declared(products)
    by_id = {p.id: p for p in products}
    return [p for p in products if p.is_sink and not p.retired and analyse(p, by_id).auditable]


def _dsn() -> str:
    return endpoints.setting(endpoints.CDC_DSN_VAR) or endpoints.endpoint("postgres")


def description(p: DataProduct, result: AuditResult) -> str:
    """The verdict with the counts; on failure the owners."""
    c = result.counts()
    counts = f"{c['missing']} missing, {c['extra']} extra, {c['differing']} differing"
    if result.passed:
        rows, moving = c["rows_sink"], c["unsettled"]
        return f"{p.id} equals {result.source} ({rows} rows; {moving} still changing)"
    return f"{p.id} differs from {result.source}: {counts}. Owners: {', '.join(p.owners)}."


def _check(p: DataProduct, products: Sequence[DataProduct]) -> dg.AssetChecksDefinition:
    by_id = {q.id: q for q in products}

    @dg.asset_check(
        asset=policy.asset_key(p),
        name=AUDIT,
        blocking=False,
        description="The sink holds exactly its CDC source's rows (keys and carried columns); "
        "differences younger than the freshness SLO are in flight, not failures.",
    )
    def _audit(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        result = run_audit(target_for(p, by_id, _dsn()))
        context.log.info(result.text())
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=severity(p, AUDIT),
            metadata=result.metadata(),
            description=description(p, result),
        )

    return _audit


def build_audit_checks(products: Sequence[DataProduct]) -> list[dg.AssetChecksDefinition]:
    """One ``audit`` check per auditable sink."""
    return [_check(p, products) for p in auditable(products)]


def checks_with_sink_runs(p: DataProduct) -> list[dg.AssetCheckKey]:
    """The checks a sink's sensor-launched runs execute beside its materialization: its SLO
    checks. Not its audit — an audit reads both whole tables and waits out in-flight changes
    (up to the freshness SLO), so inside every sink run it would hold the next run back; it
    runs on its own job and declared schedule. Not its drift check — a whole-mesh observe
    (1-2.5 s a run on 2 busy cores) for a sink run every few seconds, whose table layout only
    a redeploy or a hand changes; the drift sensor judges it every few minutes."""
    return [spec.key for spec in check_specs(p)]


def check_key(p: DataProduct) -> dg.AssetCheckKey:
    """The key of ``p``'s audit check."""
    return dg.AssetCheckKey(policy.asset_key(p), AUDIT)


def audit_job_name(p: DataProduct) -> str:
    """``<domain>__<product>__audit``."""
    return f"{p.domain}__{p.name}__audit"


def _repair_job(p: DataProduct, products: Sequence[DataProduct]) -> dg.JobDefinition:
    by_id = {q.id: q for q in products}

    @dg.op(name=f"{p.domain}__{p.name}__audit_and_repair")
    def _repair(context: dg.OpExecutionContext) -> None:
        target = target_for(p, by_id, _dsn())
        first = run_audit(target)
        context.log.info(first.text())
        final = first if first.passed else repair_and_audit(target, first, p, products)
        context.log.info(final.text())
        if not final.passed:
            raise dg.Failure(description=description(p, final), metadata=final.metadata())

    @dg.job(
        name=f"{p.domain}__{p.name}__audit_repair",
        description=f"Audit {p.id}, re-capture "
        "the differing keys through a DBLog snapshot, audit again.",
    )
    def _job() -> None:
        _repair()

    return _job


def build_audit_jobs(products: Sequence[DataProduct]) -> list[Any]:
    """Per auditable sink: the audit job (its check alone) and the repair job."""
    jobs: list[Any] = []
    for p in auditable(products):
        jobs.append(
            dg.define_asset_job(audit_job_name(p), selection=dg.AssetSelection.checks(check_key(p)))
        )
        jobs.append(_repair_job(p, products))
    return jobs
