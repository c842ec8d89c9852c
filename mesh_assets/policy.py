"""Platform-wide policy applied to every product's asset spec in one pass.

Owners, tags, kinds, automation and catalog metadata are decided here, not per asset; the SLOs
become asset checks in :mod:`mesh_assets.checks`.

No Dagster ``FreshnessPolicy``: it judges the time of the last *materialization*, and here a
streaming product materializes when it is deployed and an Iceberg sink only when data arrives,
so every quiet product would read as stale. The ``freshness`` check judges the newest *event
time* and tells an idle pipeline from a stuck one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from pyiceberg.schema import Schema

from datamesh import names
from datamesh.avro_schema import columns
from datamesh.specs.product import DataProduct

KINDS: dict[str, set[str]] = {
    "cdc": {"postgres", "kafka", "avro"},
    "processor": {"flink", "kafka", "avro"},
    "iceberg_sink": {"iceberg"},
    "postgres_sink": {"flink", "postgres"},
}


def asset_key(product: DataProduct) -> dg.AssetKey:
    """The product's asset key ``[domain, product]``."""
    return dg.AssetKey(names.asset_key_path(product))


def source_table_key(product: DataProduct) -> dg.AssetKey:
    """External asset of a CDC product's PostgreSQL table: ``postgres/<db>/<schema>/<table>``."""
    assert product.source is not None
    s = product.source
    return dg.AssetKey([SOURCE_PREFIX, s.database, s.schema, s.table])


def tags(product: DataProduct) -> dict[str, str]:
    """Catalog tags: domain, tier, access, kind, plus the declaration's own tags."""
    return {
        **product.tags,
        "domain": product.domain,
        "tier": str(product.tier),
        "access": product.access,
        "product_kind": product.kind,
    }


STREAMING_KINDS = frozenset({"cdc", "processor", "postgres_sink"})
# Step order inside one run (Dagster's `dagster/priority` op tag: among the steps ready to run,
# the higher goes first). The in-process executor runs one step at a time, and a run that
# starts several streaming products used to interleave every drift check (a whole-mesh
# observe, ~0.5-1.5 s each) between the deployments: now the assets go first — those of the
# products more others wait on first (asset_op_tags) — the SLO checks when no asset can run
# (blocking ones gate their readers), the drift checks last.
AFTER_ASSETS_OP_TAGS = {"dagster/priority": "-1"}
SOURCE_PREFIX = "postgres"


def downstream(products: Sequence[DataProduct]) -> dict[str, set[str]]:
    """Every product's transitive readers (ids), by product id."""
    readers: dict[str, list[str]] = {}
    for p in products:
        for i in p.inputs:
            readers.setdefault(i, []).append(p.id)
    found: dict[str, set[str]] = {}

    def below(pid: str) -> set[str]:  # inputs form no cycle: datamesh.specs.rules refuses one
        if pid not in found:
            found[pid] = {r for direct in readers.get(pid, []) for r in (direct, *below(direct))}
        return found[pid]

    return {p.id: below(p.id) for p in products}


def asset_op_tags(p: DataProduct, below: Mapping[str, set[str]]) -> dict[str, str]:
    """The step priority of a product's asset: 1 + how many products read it, directly or not.
    In a run starting the demo's nine streaming products, the Flink jobs feeding sinks go
    before a job nothing reads (a deployment takes 3-13 s here, one at a time), so the sinks'
    data comes sooner; every asset stays above the SLO checks (0) and the drift checks (-1)."""
    return {"dagster/priority": str(1 + len(below.get(p.id, ())))}


def automation(product: DataProduct) -> dg.AutomationCondition | None:
    """Streaming products start themselves once (connector, Flink job) when never materialized
    and their inputs exist, so ``make dev`` needs no click; Iceberg sinks follow their input's
    topic sensor instead."""
    if product.kind not in STREAMING_KINDS:
        return None
    # Not `on_missing()`: it only fires for assets that go missing after the condition exists.
    # A failed start is not retried on its own (fix, then materialize): no run every tick.
    # A CDC product's source table is an external asset, never materialized: not an input to
    # wait for.
    inputs_missing = dg.AutomationCondition.any_deps_missing()
    if product.kind == "cdc":
        inputs_missing = inputs_missing.ignore(dg.AssetSelection.assets(source_table_key(product)))
    return (
        dg.AutomationCondition.missing()
        & ~inputs_missing
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.newly_requested()
        & ~dg.AutomationCondition.execution_failed()
    ).with_label("start_once")


def column_schema(schema: dict[str, Any] | None) -> dg.TableSchema | None:
    """``dagster/column_schema`` from an Avro record."""
    if not schema:
        return None
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.doc or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in columns(schema)
        ]
    )


def iceberg_column_schema(schema: Schema) -> dg.TableSchema:
    """``dagster/column_schema`` of an Iceberg table as it is now (it follows its input)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                f.name,
                str(f.field_type),
                description=f.doc or None,
                constraints=dg.TableColumnConstraints(nullable=not f.required),
            )
            for f in schema.fields
        ]
    )


def metadata(product: DataProduct, schema: dict[str, Any] | None) -> dict[str, Any]:
    """Static catalog metadata of a product (no secrets, no endpoints)."""
    meta: dict[str, Any] = {
        "declared_in": str(product.declared_in.relative_to(product.declared_in.parents[2]))
    }
    table_schema = column_schema(schema)
    if table_schema is not None:
        meta["dagster/column_schema"] = table_schema
    if product.is_kafka_backed:
        topic = names.topic(product)
        meta["topic"] = topic
        meta["schema_subject"] = names.value_subject(topic)
    if product.kind == "iceberg_sink":
        meta["dagster/table_name"] = ".".join(names.iceberg_table(product))
    if product.kind == "postgres_sink" and product.sink is not None:
        meta["dagster/table_name"] = f"{product.sink.database}.{product.sink.table}"
    if product.sink is not None:
        meta["sink_mode"] = product.sink.mode
        if product.sink.partition_by:
            meta["partition_by"] = ", ".join(product.sink.partition_by)
    if product.key:
        meta["key"] = ", ".join(product.key)
    if product.slo.max_lag is not None:
        meta["slo/max_lag"] = product.slo.max_lag
    if product.slo.freshness is not None:
        meta["slo/freshness_s"] = int(product.slo.freshness.total_seconds())
    return meta
