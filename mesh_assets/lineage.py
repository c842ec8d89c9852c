"""Field-level lineage as ``dagster/column_lineage``: CDC products from their table's columns,
processors from their SQL, sinks column for column from their input."""

from __future__ import annotations

import logging

import dagster as dg

from datamesh.errors import MeshError
from datamesh.flink.lineage import column_lineage
from datamesh.specs.product import DataProduct
from mesh_assets.policy import asset_key, source_table_key

log = logging.getLogger(__name__)


def lineage_of(product: DataProduct, by_id: dict[str, DataProduct]) -> dg.TableColumnLineage | None:
    """Per output column, the input columns it is computed from (None when not derivable)."""
    from datamesh.flink.declared import job_for  # local: keeps the Flink package off import

    if product.kind == "cdc":
        table = source_table_key(product)
        return dg.TableColumnLineage(
            {
                column: [dg.TableColumnDep(asset_key=table, column_name=column)]
                for column in product.field_names()
            }
        )
    if product.is_sink:
        source = by_id[product.inputs[0]]
        return dg.TableColumnLineage(
            {
                column: [dg.TableColumnDep(asset_key=asset_key(source), column_name=column)]
                for column in source.field_names()
            }
        )
    if product.kind != "processor":
        return None
    where = str(product.sql_file or product.declared_in)
    try:
        # from the declarations only: no network while definitions load
        job = job_for(product, by_id, registered={})
        where = job.sql_file
        inputs = {pid: by_id[pid].field_names() for pid in product.inputs}
        derived = column_lineage(job.sql, inputs, product.field_names() or None)
    except (MeshError, ValueError, KeyError) as exc:  # lineage is informative, never blocking
        log.warning("no column lineage for %s from %s: %s", product.id, where, exc)
        return None
    return dg.TableColumnLineage(
        {
            column: [
                dg.TableColumnDep(asset_key=asset_key(by_id[pid]), column_name=source)
                for pid, source in deps
            ]
            for column, deps in derived.items()
        }
    )
