"""SLOs as Dagster asset checks: specs from the declarations, one evaluation for all products.

Every product gets the checks :func:`datamesh.checks.evaluate.checks_for` names. Tier-1
products' checks are ``ERROR`` and blocking (an Iceberg sink does not write from an input whose
blocking check failed at its last evaluation); others ``WARN``. The ``lag`` check never blocks:
the consumers it measures are the very sinks it would stop, so blocking them would keep it red.
``upstream_schema`` is ``ERROR`` and blocking at every tier: it fails only when a consumer's
pipeline is paused, which needs its owners whatever the tier, and nothing downstream should
write from a paused product.

Checks are evaluated by the ``mesh_slo_sensor`` (on by default, every minute, all products in
one pass) and on demand — from the UI, or after the asset in a ``dagster asset materialize``
run (one ``<domain>__<product>__slo_checks`` op per product); both run
:func:`evaluate_products`.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)

from datamesh import endpoints, heartbeat
from datamesh.checks.evaluate import checks_for, evaluate, heartbeat_latency
from datamesh.checks.gather import Systems, gather
from datamesh.checks.observed import Observed
from datamesh.checks.outcome import (
    DEAD_LETTERS,
    FRESHNESS,
    LAG,
    LATENCY,
    SCHEMA,
    UPSTREAM_SCHEMA,
    Outcome,
)
from datamesh.flink.jobmanager import JobManager
from datamesh.specs.product import DataProduct
from mesh_assets import policy
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource

DONE = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
TOTAL_KEY = "dead_letters_total"


def _describe(p: DataProduct, check: str, heartbeats: bool = False) -> str:
    slo = p.slo
    idle = "heartbeats must keep arriving" if heartbeats else "idle sources pass"
    return {
        FRESHNESS: f"Newest event time within {slo.freshness} ({idle}).",
        LAG: f"Consumers within {slo.max_lag} messages of the end of the topic.",
        DEAD_LETTERS: "No new message on the dead-letter topic since the last evaluation.",
        SCHEMA: f"Latest registered value schema is the declared one or a {p.compatibility} "
        "successor.",
        LATENCY: f"p99 source commit -> publish within {slo.latency_p99}.",
        UPSTREAM_SCHEMA: "No upstream schema change removed or retyped a field it consumes "
        "(else its pipeline is paused).",
    }[check]


def blocking(p: DataProduct, check: str) -> bool:
    """Tier-1 checks block downstream sinks, except ``lag``; ``upstream_schema`` always blocks
    (see the module docstring)."""
    return check == UPSTREAM_SCHEMA or (p.tier == 1 and check != LAG)


def check_specs(
    p: DataProduct, by_id: Mapping[str, DataProduct] | None = None
) -> list[dg.AssetCheckSpec]:
    """The product's check specs (``by_id``: every product, to tell whether heartbeats reach
    it)."""
    beats = bool(heartbeat.sources(p.id, by_id)) if by_id else False
    return [
        dg.AssetCheckSpec(
            name,
            asset=policy.asset_key(p),
            description=_describe(p, name, beats),
            blocking=blocking(p, name),
            metadata={"owners": ", ".join(p.owners), "tier": p.tier},
        )
        for name in checks_for(p)
    ]


def severity(p: DataProduct, check: str = "") -> dg.AssetCheckSeverity:
    """ERROR for tier 1 and for ``upstream_schema``, WARN otherwise."""
    if p.tier == 1 or check == UPSTREAM_SCHEMA:
        return dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckSeverity.WARN


def result_metadata(p: DataProduct, o: Outcome) -> dict[str, Any]:
    """What a check result shows: owners, measured value, objective, state and the hop."""
    meta: dict[str, Any] = {
        "owners": ", ".join(p.owners),
        "state": o.state,
        "summary": o.summary,
    }
    if o.measured is not None:
        meta[f"measured_{o.unit}" if o.unit else "measured"] = o.measured
    if o.objective is not None:
        meta[f"objective_{o.unit}" if o.unit else "objective"] = o.objective
    if o.hop:
        meta["likely_hop"] = o.hop
    for key, value in o.details.items():
        meta[key] = dg.MetadataValue.json(value) if isinstance(value, dict) else value
    return meta


def description(p: DataProduct, o: Outcome) -> str:
    """One line: the verdict, and on failure whom to tell and where to look."""
    if o.passed:
        return o.summary
    where = f" Likely hop: {o.hop}." if o.hop else ""
    return f"{p.id}: {o.summary}.{where} Owners: {', '.join(p.owners)}."


def evaluate_products(
    products: Sequence[DataProduct],
    by_id: Mapping[str, DataProduct],
    instance: dg.DagsterInstance,
    systems: Systems,
) -> list[tuple[DataProduct, Outcome]]:
    """Gather once, evaluate every check of ``products``."""
    return evaluate_and_observe(products, by_id, instance, systems)[0]


def evaluate_and_observe(
    products: Sequence[DataProduct],
    by_id: Mapping[str, DataProduct],
    instance: dg.DagsterInstance,
    systems: Systems,
) -> tuple[list[tuple[DataProduct, Outcome]], list[dg.AssetObservation]]:
    """Gather once: every check of ``products``, and the heartbeat latency observation of
    each of them that heartbeats reach (:func:`heartbeat_observations`)."""
    observed = gather(products, by_id, systems)
    previous = previous_dead_letters(instance, products)
    results = evaluate(products, by_id, observed, previous)
    pairs = [(by_id[pid], o) for pid, outcomes in results.items() for o in outcomes]
    return pairs, heartbeat_observations(products, by_id, observed)


def heartbeat_observations(
    products: Sequence[DataProduct], by_id: Mapping[str, DataProduct], observed: Observed
) -> list[dg.AssetObservation]:
    """One observation per product whose hop heartbeats reach: ``heartbeat_latency_ms_p50/p99``
    (source commit -> this hop) and ``heartbeat_hop_latency_ms_p50/p99`` (this hop alone), over
    the heartbeats seen there (:mod:`datamesh.heartbeat`)."""
    out = []
    for p in products:
        figures = heartbeat_latency(p, by_id, observed)
        if figures is not None:
            out.append(
                dg.AssetObservation(asset_key=policy.asset_key(p), metadata=figures.metadata())
            )
    return out


def evaluations(pairs: Iterable[tuple[DataProduct, Outcome]]) -> list[dg.AssetCheckEvaluation]:
    """Runless evaluations (what the sensor reports)."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=policy.asset_key(p),
            check_name=o.check,
            passed=o.passed,
            metadata=result_metadata(p, o),
            severity=severity(p, o.check),
            description=description(p, o),
            blocking=blocking(p, o.check),
        )
        for p, o in pairs
    ]


def previous_dead_letters(
    instance: dg.DagsterInstance, products: Sequence[DataProduct]
) -> dict[str, int]:
    """Dead letters counted at each product's last completed ``dead_letters`` evaluation."""
    out: dict[str, int] = {}
    storage = instance.event_log_storage
    for p in products:
        if DEAD_LETTERS not in checks_for(p):
            continue
        key = dg.AssetCheckKey(policy.asset_key(p), DEAD_LETTERS)
        records = storage.get_asset_check_execution_history(key, limit=1, status=DONE)
        evaluation = records[0].evaluation if records else None
        total = evaluation.metadata.get(TOTAL_KEY) if evaluation is not None else None
        if total is not None:
            out[p.id] = int(total.value)  # type: ignore[arg-type]
    return out


def failing_blocking_checks(instance: dg.DagsterInstance, p: DataProduct) -> list[str]:
    """The blocking checks of ``p`` whose last completed evaluation failed, with why."""
    failing = []
    keys = [dg.AssetCheckKey(policy.asset_key(p), c) for c in checks_for(p) if blocking(p, c)]
    for key in keys:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1, status=DONE
        )
        evaluation = records[0].evaluation if records else None
        if evaluation is not None and not evaluation.passed:
            failing.append(f"{p.id} {key.name}: {evaluation.description or 'failed'}")
    return failing


def systems(
    kafka: KafkaResource,
    registry: SchemaRegistryResource,
    iceberg: IcebergResource,
) -> Systems:
    """The systems the checks read, from the code location's resources."""
    return Systems(
        kafka.client_config,
        registry.client,
        lambda: JobManager(endpoints.endpoint("flink")),
        iceberg.catalog,
    )


def build_checks(products: Sequence[DataProduct]) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per product holding its checks, so that in a run each runs right
    after its asset (and, when blocking, before what reads it)."""
    by_id = {p.id: p for p in products}
    return [_product_checks(p, by_id) for p in products if checks_for(p)]


def _product_checks(p: DataProduct, by_id: Mapping[str, DataProduct]) -> dg.AssetChecksDefinition:
    # Default priority (0): in a run, below every asset that can run (policy.asset_op_tags).
    # Not its asset's priority: a CDC product's checks would then run the instant its
    # connector streams, before the connector's first event of that table registered the
    # schema the `schema` check reads.
    @dg.multi_asset_check(
        specs=check_specs(p, by_id), can_subset=True, name=f"{p.domain}__{p.name}__slo_checks"
    )
    def _checks(
        context: dg.AssetCheckExecutionContext,
        kafka: KafkaResource,
        schema_registry: SchemaRegistryResource,
        iceberg: IcebergResource,
    ) -> Iterable[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        pairs = evaluate_products(
            [p], by_id, context.instance, systems(kafka, schema_registry, iceberg)
        )
        for _, o in pairs:
            if dg.AssetCheckKey(policy.asset_key(p), o.check) in selected:
                yield dg.AssetCheckResult(
                    asset_key=policy.asset_key(p),
                    check_name=o.check,
                    passed=o.passed,
                    severity=severity(p, o.check),
                    metadata=result_metadata(p, o),
                    description=description(p, o),
                )

    return _checks
