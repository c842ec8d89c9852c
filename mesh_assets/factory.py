"""The one factory that turns data products into Dagster assets.

Materializing a CDC product provisions its topic and makes its connector run (reporting slot lag,
LSN, events and snapshot progress); a processor validates and deploys its Flink job (idempotent,
upgrading from a savepoint on change); an Iceberg sink applies what is new on its input topic to
its table in one snapshot; a PostgreSQL sink deploys the Flink job that streams into its table.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from datamesh import names
from datamesh.control import inventory
from datamesh.sinks.iceberg_sink import sink_job
from datamesh.specs.product import DataProduct
from datamesh.specs.sink_layout import effective_schema
from mesh_assets import policy
from mesh_assets.checks import failing_blocking_checks
from mesh_assets.lineage import lineage_of
from resources.cdc import CdcResource
from resources.flink import FlinkResource, job_log_line, status_metadata
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource
from resources.schema_registry import SchemaRegistryResource


def build_assets(
    products: Sequence[DataProduct],
) -> list[dg.AssetsDefinition | dg.SourceAsset | dg.AssetSpec]:
    """One asset per product (plus a dead-letter observable per processor), with deps mirroring
    the declared inputs (across domains), and an external asset per captured PostgreSQL table
    so the graph starts where the data does."""
    by_id = {p.id: p for p in products}
    built: list[dg.AssetsDefinition | dg.SourceAsset | dg.AssetSpec] = list(
        {policy.source_table_key(p): _source_table(p) for p in products if p.kind == "cdc"}.values()
    )
    below = policy.downstream(products)
    return built + [asset for p in products for asset in _build(p, by_id, below)]


def _source_table(p: DataProduct) -> dg.AssetSpec:
    """The table a CDC product captures, as an external asset in the product's domain."""
    assert p.source is not None
    s = p.source
    metadata: dict[str, Any] = {"dagster/table_name": f"{s.database}.{s.schema}.{s.table}"}
    schema = policy.column_schema(p.value_schema)
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    return dg.AssetSpec(
        key=policy.source_table_key(p),
        description=f"PostgreSQL table {s.schema}.{s.table} of database {s.database}, "
        f"captured by {p.id}.",
        group_name=p.domain,
        owners=list(p.owners),
        tags={"domain": p.domain, "tier": str(p.tier), "access": p.access},
        kinds={"postgres"},
        metadata=metadata,
    )


def _spec_kwargs(
    p: DataProduct, by_id: dict[str, DataProduct], below: dict[str, set[str]]
) -> dict[str, Any]:
    metadata = policy.metadata(p, effective_schema(p, by_id))
    column_lineage = lineage_of(p, by_id)
    if column_lineage is not None:
        metadata["dagster/column_lineage"] = column_lineage
    return {
        "key": policy.asset_key(p),
        "description": p.description,
        "owners": list(p.owners),
        "group_name": p.domain,
        "tags": policy.tags(p),
        "kinds": policy.KINDS[p.kind],
        "metadata": metadata,
        "deps": [policy.asset_key(by_id[i]) for i in p.inputs]
        + ([policy.source_table_key(p)] if p.kind == "cdc" else []),
        "automation_condition": policy.automation(p),
        "op_tags": policy.asset_op_tags(p, below),
    }


def _lineage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The spec's column lineage, repeated in each materialization (the UI reads it there)."""
    lineage = kwargs["metadata"].get("dagster/column_lineage")
    return {} if lineage is None else {"dagster/column_lineage": lineage}


def _build(
    p: DataProduct, by_id: dict[str, DataProduct], below: dict[str, set[str]]
) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    kwargs = _spec_kwargs(p, by_id, below)
    if p.kind == "cdc":
        return [_cdc_asset(p, kwargs, list(by_id.values()))]
    if p.kind == "processor":
        return [_processor_asset(p, kwargs, by_id), _dlq_asset(p)]
    if p.kind == "postgres_sink":
        return [_postgres_sink_asset(p, kwargs, by_id)]
    return [_iceberg_sink_asset(p, kwargs, by_id)]


def _cdc_asset(
    p: DataProduct, kwargs: dict[str, Any], products: list[DataProduct]
) -> dg.AssetsDefinition:
    assert p.topic is not None
    topic, settings = names.topic(p), p.topic

    @dg.asset(**kwargs)
    def _asset(
        context: dg.AssetExecutionContext,
        kafka: KafkaResource,
        schema_registry: SchemaRegistryResource,
        cdc: CdcResource,
    ) -> dg.MaterializeResult:
        schema_registry.check(p)  # sets the subjects' level; the connector registers the schemas
        report = kafka.ensure_topic(topic, settings, p.declared_in)
        for other in _same_connector(p, products):  # the connector captures them all at once:
            assert other.topic is not None  # their topics must exist as declared before it starts
            kafka.ensure_topic(names.topic(other), other.topic, other.declared_in)
        status = cdc.ensure(p, products)
        inventory.record(p, products)
        report.update(cdc.metadata(p, status))
        context.log.info(
            f"topic {topic} and connector {report['connector']} ({report['connector_state']})"
        )
        return dg.MaterializeResult(metadata={**report, **_lineage(kwargs)})

    return _asset


def _same_connector(p: DataProduct, products: list[DataProduct]) -> list[DataProduct]:
    assert p.source is not None
    return [
        q
        for q in products
        if q.kind == "cdc"
        and q is not p
        and q.source is not None
        and (q.domain, q.source.database) == (p.domain, p.source.database)
    ]


def _processor_asset(
    p: DataProduct, kwargs: dict[str, Any], by_id: dict[str, DataProduct]
) -> dg.AssetsDefinition:
    @dg.asset(**kwargs)
    def _asset(
        context: dg.AssetExecutionContext,
        schema_registry: SchemaRegistryResource,
        flink: FlinkResource,
    ) -> dg.MaterializeResult:
        schema_registry.check(p)  # an incompatible schema is refused before anything changes
        status = flink.deploy(p, by_id)
        inventory.record(p, list(by_id.values()))
        context.log.info(job_log_line(status))
        return dg.MaterializeResult(
            metadata={"topic": names.topic(p), **status_metadata(status), **_lineage(kwargs)}
        )

    return _asset


def _dlq_asset(p: DataProduct) -> dg.SourceAsset:
    dlq = names.dlq_topic(names.topic(p))

    @dg.observable_source_asset(
        key=dg.AssetKey([p.domain, f"{p.name}_dlq"]),
        group_name=p.domain,
        description=f"Dead letters of {p.id}: input messages its Flink job could not decode.",
        tags=policy.tags(p),
        metadata={"topic": dlq},
    )
    def _observe(kafka: KafkaResource) -> dg.ObserveResult:
        offsets = kafka.end_offsets(dlq) or {}
        total = sum(offsets.values())
        return dg.ObserveResult(
            data_version=dg.DataVersion(str(total)), metadata={"dead_letters": total, "topic": dlq}
        )

    return _observe


def _iceberg_sink_asset(
    p: DataProduct, kwargs: dict[str, Any], by_id: dict[str, DataProduct]
) -> dg.AssetsDefinition:
    job = sink_job(p, by_id)

    @dg.asset(**kwargs)
    def _asset(
        context: dg.AssetExecutionContext,
        iceberg: IcebergResource,
        kafka: KafkaResource,
        schema_registry: SchemaRegistryResource,
    ) -> dg.MaterializeResult:
        blocked = failing_blocking_checks(context.instance, by_id[p.inputs[0]])
        if blocked:  # a sink does not write from an input whose blocking check fails
            raise dg.Failure(
                f"{p.id} does not write while its input fails a blocking check: "
                + "; ".join(blocked),
                metadata={"blocked_by": "; ".join(blocked)},
            )
        report = iceberg.run_sink(
            job, kafka.client_config(), schema_registry.client(), context.log.info
        )
        inventory.record(p, list(by_id.values()))
        metadata = report.metadata()
        schema = iceberg.table_schema(job.table)
        if schema is not None:
            metadata["dagster/column_schema"] = policy.iceberg_column_schema(schema)
        return dg.MaterializeResult(metadata={**metadata, **_lineage(kwargs)})

    return _asset


def _postgres_sink_asset(
    p: DataProduct, kwargs: dict[str, Any], by_id: dict[str, DataProduct]
) -> dg.AssetsDefinition:
    @dg.asset(**kwargs)
    def _asset(context: dg.AssetExecutionContext, flink: FlinkResource) -> dg.MaterializeResult:
        status = flink.deploy_sink(p, by_id)
        inventory.record(p, list(by_id.values()))
        context.log.info(job_log_line(status))
        return dg.MaterializeResult(metadata={**status_metadata(status), **_lineage(kwargs)})

    return _asset
