"""The ``drift`` check: a product's running resources match its declaration (``mesh plan`` has
nothing to do for it). Evaluated by the ``mesh_drift_sensor`` (on by default, every few minutes)
and on demand — from the UI, or in a materialization run after every asset of that run, from
one observation of the mesh per run (one ``<domain>__<product>__drift`` check per product).
Never blocking: drift is for a human to look at (``mesh plan``), and the sensor repairs it only
for products declaring ``repair: auto``.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from datamesh.control.drift import Verdict, verdicts
from datamesh.control.observe import observe
from datamesh.control.plan import plan
from datamesh.specs.product import DataProduct
from mesh_assets import policy

DRIFT = "drift"


def drift_spec(p: DataProduct) -> dg.AssetCheckSpec:
    """The product's drift check."""
    return dg.AssetCheckSpec(
        DRIFT,
        asset=policy.asset_key(p),
        description="Running resources (topics, subjects, connector, job, table) match the "
        "declaration: `mesh plan` has nothing to do for this product.",
        blocking=False,
        metadata={"owners": ", ".join(p.owners)},
    )


def current(products: Sequence[DataProduct]) -> list[Verdict]:
    """Observe the mesh and plan it: one verdict per live product."""
    return verdicts(products, plan(products, observe(products)))


# The drift checks of one run share one observation of the mesh. They run after every asset of
# their run (policy.AFTER_ASSETS_OP_TAGS), so what the first one observes is what the last one
# would: a run starting the demo's 9 streaming products made 9 whole-mesh observes (0.5-1.6 s
# each) where one does. Per process: under a multiprocess executor each step observes alone.
_RUN_VERDICTS: dict[str, list[Verdict]] = {}


def run_verdicts(run_id: str, products: Sequence[DataProduct]) -> list[Verdict]:
    """:func:`current`, observed once per run (the latest run's verdicts are kept)."""
    if run_id not in _RUN_VERDICTS:
        _RUN_VERDICTS.clear()
        _RUN_VERDICTS[run_id] = current(products)
    return _RUN_VERDICTS[run_id]


def metadata(p: DataProduct, v: Verdict) -> dict[str, Any]:
    """What a drift result shows: owners, how many differences, and each one."""
    return {
        "owners": ", ".join(p.owners),
        "differences": len(v.lines),
        "plan": dg.MetadataValue.md("\n".join(f"- {line}" for line in v.lines) or "in sync"),
    }


def description(p: DataProduct, v: Verdict) -> str:
    """The verdict, and on failure whom to tell and what to run."""
    if v.in_sync:
        return v.summary
    return f"{p.id}: {v.summary}. Run `mesh plan`. Owners: {', '.join(p.owners)}."


def evaluations(
    products: Sequence[DataProduct], found: Iterable[Verdict]
) -> list[dg.AssetCheckEvaluation | dg.AssetObservation]:
    """Runless check evaluations and, for products in drift, an observation recording it."""
    by_id = {p.id: p for p in products}
    out: list[dg.AssetCheckEvaluation | dg.AssetObservation] = []
    for v in found:
        p = by_id[v.product]
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=policy.asset_key(p),
                check_name=DRIFT,
                passed=v.in_sync,
                metadata=metadata(p, v),
                severity=dg.AssetCheckSeverity.WARN,
                description=description(p, v),
            )
        )
        if not v.in_sync:
            out.append(dg.AssetObservation(asset_key=policy.asset_key(p), metadata=metadata(p, v)))
    return out


def build_drift_checks(products: Sequence[DataProduct]) -> list[dg.AssetChecksDefinition]:
    """One drift check per live product (in a run, after every asset of the run)."""
    return [_check(p, products) for p in products if not p.retired]


def _check(p: DataProduct, products: Sequence[DataProduct]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        specs=[drift_spec(p)],
        name=f"{p.domain}__{p.name}__drift",
        op_tags=policy.AFTER_ASSETS_OP_TAGS,  # after every asset of the run: nothing waits on it
    )
    def _drift(context: dg.AssetCheckExecutionContext) -> Iterable[dg.AssetCheckResult]:
        v = next(v for v in run_verdicts(context.run.run_id, products) if v.product == p.id)
        yield dg.AssetCheckResult(
            asset_key=policy.asset_key(p),
            check_name=DRIFT,
            passed=v.in_sync,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata(p, v),
            description=description(p, v),
        )

    return _drift
