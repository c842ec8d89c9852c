"""Write one sink batch into an Iceberg table as ONE snapshot (pyiceberg, copy-on-write).

pyiceberg's ``upsert``/``overwrite`` would commit up to three snapshots (delete, rewrite, append)
and build one predicate per key (a left-deep ``Or`` for composite keys that recursion cannot
take at 100k keys). Instead, one ``overwrite`` snapshot producer removes every data file holding
a touched key, adds its rewrite without those rows, and adds the batch's rows; the offsets the
batch consumed travel in the same snapshot's summary. The snapshot producer asserts the branch
head it started from, so a concurrent commit makes this one fail (``CommitFailedException``)
rather than both apply.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThanOrEqual,
)
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, schema_to_pyarrow
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, Transaction
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)

from datamesh.sinks.table_schema import AddColumn, Evolution
from datamesh.specs import partitioning

# pyiceberg (0.12) retries a conflicting commit by re-applying it on the new head. A sink batch
# must not be re-applied on top of a concurrent batch that consumed the same offsets: the sink
# retries itself, re-reading the committed offsets first. So pyiceberg's own retries are off.
TABLE_PROPERTIES = {"commit.retry.num-retries": "0"}


def open_or_create(
    catalog: Catalog, ident: str, schema: Schema, partition_by: Sequence[str]
) -> tuple[Table, bool]:
    """Load ``namespace.table``, or create it from ``schema`` partitioned by ``partition_by``."""
    namespace = ident.rsplit(".", 1)[0]
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(namespace)
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        spec = partition_spec(schema, partition_by)
        with contextlib.suppress(TableAlreadyExistsError):  # a concurrent run created it first
            created = catalog.create_table(
                ident, schema=schema, partition_spec=spec, properties=TABLE_PROPERTIES
            )
            return created, True
        table = catalog.load_table(ident)
    if any(table.properties.get(k) != v for k, v in TABLE_PROPERTIES.items()):
        with table.transaction() as tx:
            tx.set_properties(TABLE_PROPERTIES)
        table = catalog.load_table(ident)
    return table, False


def partition_spec(schema: Schema, partition_by: Sequence[str]) -> PartitionSpec:
    """Iceberg partition spec of declared ``partition_by`` entries (validated at load)."""
    fields = []
    for i, text in enumerate(partition_by):
        field = partitioning.parse(text)
        source = schema.find_field(field.column)
        fields.append(PartitionField(source.field_id, 1000 + i, _transform(field), field.name))
    return PartitionSpec(*fields)


def _transform(field: partitioning.PartitionField) -> Transform[Any, Any]:
    simple: dict[str, Transform[Any, Any]] = {
        "identity": IdentityTransform(),
        "year": YearTransform(),
        "month": MonthTransform(),
        "day": DayTransform(),
        "hour": HourTransform(),
    }
    if field.transform == "bucket":
        return BucketTransform(num_buckets=int(field.arg or 1))
    if field.transform == "truncate":
        return TruncateTransform(width=int(field.arg or 1))
    return simple[field.transform]


def evolve(tx: Transaction, steps: Sequence[Evolution]) -> None:
    """Add columns / widen types inside ``tx`` (committed with the batch's data)."""
    if not steps:
        return
    with tx.update_schema() as update:
        for step in steps:
            if isinstance(step, AddColumn):
                update.add_column(step.name, step.type, required=False)
            else:
                update.update_column(step.name, field_type=step.type)


def arrow_rows(tx: Transaction, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` as an Arrow table of the (evolved) table schema; absent fields are null."""
    schema = schema_to_pyarrow(tx.table_metadata.schema(), include_field_ids=False)
    return pa.Table.from_pylist(rows, schema=schema)


def commit_batch(
    table: Table,
    tx: Transaction,
    key: Sequence[str],
    touched: pa.Table | None,
    truncate: bool,
    new_rows: pa.Table,
    properties: dict[str, str],
) -> None:
    """Stage, in ``tx``, one overwrite snapshot: rows of ``touched`` keys (or all, on
    ``truncate``) leave, ``new_rows`` arrive, ``properties`` go into the summary."""
    metadata = tx.table_metadata
    write_uuid = uuid.uuid4()
    counter = itertools.count(0)
    with tx.update_snapshot(snapshot_properties=properties).overwrite(
        commit_uuid=write_uuid
    ) as snap:
        if truncate or (touched is not None and touched.num_rows):
            scan_filter = AlwaysTrue() if truncate else _key_range(touched, key)
            for task in table.scan(row_filter=scan_filter).plan_files():
                if truncate:
                    snap.delete_data_file(task.file)
                    continue
                current = ArrowScan(
                    table_metadata=metadata,
                    io=table.io,
                    projected_schema=metadata.schema(),
                    row_filter=AlwaysTrue(),
                ).to_table(tasks=[task])
                kept = _without_keys(current, touched, key)
                if kept.num_rows == current.num_rows:
                    continue
                snap.delete_data_file(task.file)
                if kept.num_rows:
                    for data_file in _dataframe_to_data_files(
                        metadata, kept, table.io, write_uuid, counter
                    ):
                        snap.append_data_file(data_file)
        if new_rows.num_rows:
            for data_file in _dataframe_to_data_files(
                metadata, new_rows, table.io, write_uuid, counter
            ):
                snap.append_data_file(data_file)


def _key_range(touched: pa.Table | None, key: Sequence[str]) -> BooleanExpression:
    """A cheap file-pruning filter: the first key column between the batch's min and max."""
    assert touched is not None
    column = touched.column(key[0])
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None or high is None:
        return AlwaysTrue()
    return And(GreaterThanOrEqual(key[0], low), LessThanOrEqual(key[0], high))  # type: ignore[call-arg,arg-type]


def _without_keys(current: pa.Table, touched: pa.Table | None, key: Sequence[str]) -> pa.Table:
    """Rows of ``current`` whose key is not in ``touched`` (in their original order)."""
    assert touched is not None
    if len(key) == 1:
        column = current.column(key[0])
        values = touched.column(key[0]).cast(column.type)
        return current.filter(pc.invert(pc.is_in(column, value_set=values)))
    rows = pa.array(range(current.num_rows), pa.int64())
    index = pa.table({**{k: current.column(k) for k in key}, "__row": rows})
    probe = pa.table({k: touched.column(k).cast(current.schema.field(k).type) for k in key})
    matched = index.join(probe, keys=list(key), join_type="left semi").column("__row")
    return current.filter(pc.invert(pc.is_in(rows, value_set=matched.combine_chunks())))
