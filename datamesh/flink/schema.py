"""The output Avro schema of a processor, derived from its query's result types.

When the product declares a schema (``schema: <product>.avsc``) the query must fit it — same
field names in the same order, compatible types, no NULLs where the contract has none — and the
declared schema (names, docs) is what gets registered and written. Otherwise the derived schema is.

One exception lets an upstream change propagate: nullable columns the query produces *after*
every declared one (a column added upstream, carried by ``SELECT *`` or a typed processor now
that inputs are read with their registered schema) extend the declared record as optional
fields (default null) — an addition every compatibility level accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datamesh.avro_schema import key_record, type_label
from datamesh.flink.errors import SqlValidationError
from datamesh.flink.job import ProcessorJob
from datamesh.flink.types import SqlType, avro_field

# (declared, derived) non-null Avro labels that carry the query's values without loss.
_WIDENINGS = {("long", "int"), ("double", "float"), ("double", "int"), ("double", "long")}


def record_name(product_id: str) -> tuple[str, str]:
    """(namespace, name) of a derived record: ``studio.movie_catalog`` → MovieCatalog."""
    domain, name = product_id.split(".", 1)
    return f"{domain}.{name}", "".join(part.capitalize() for part in name.split("_"))


def derive(job: ProcessorJob, columns: Sequence[tuple[str, SqlType]]) -> dict[str, Any]:
    """The Avro record for the query's result columns."""
    namespace, name = record_name(job.product_id)
    return {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "doc": f"Output of the Flink processor {job.name} (derived from its SQL).",
        "fields": [avro_field(n, t) for n, t in columns],
    }


def output_schemas(
    job: ProcessorJob, columns: Sequence[tuple[str, SqlType]]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(value schema, key schema or None) to register and write with."""
    derived = derive(job, columns)
    value = derived
    if job.declared_schema is not None:
        value = extended(job.declared_schema, derived)
        check_declared(job, value, derived)
    missing = [k for k in job.key if k not in {n for n, _ in columns}]
    if missing:
        raise SqlValidationError(
            job.product_id,
            job.sql_file,
            f"key column {missing[0]!r} is not in the query's result {[n for n, _ in columns]}",
            fix=f"select {missing[0]} or change `key:` in {job.declared_in}",
            column=missing[0],
        )
    return value, (key_record(value, job.key) if job.key else None)


def extended(declared: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """``declared`` with the nullable fields ``derived`` has after all of its own, appended as
    optional fields (default null); ``declared`` itself when there are none."""
    want = [f["name"] for f in declared.get("fields", [])]
    got = derived["fields"]
    if [f["name"] for f in got[: len(want)]] != want or len(got) == len(want):
        return declared
    extra = got[len(want) :]
    if not all(_split(f["type"])[0] for f in extra):
        return declared  # check_declared names the first one that does not fit
    added = [{"name": f["name"], "type": f["type"], "default": None} for f in extra]
    return {**declared, "fields": [*declared["fields"], *added]}


def check_declared(job: ProcessorJob, declared: dict[str, Any], derived: dict[str, Any]) -> None:
    """Raise :class:`SqlValidationError` naming the first column that breaks the declared schema."""
    want = [f["name"] for f in declared.get("fields", [])]
    got = [f["name"] for f in derived["fields"]]
    if want != got:
        raise _mismatch(job, want, got)
    for d, q in zip(declared["fields"], derived["fields"], strict=True):
        d_null, d_type = _split(d["type"])
        q_null, q_type = _split(q["type"])
        if q_null and not d_null:
            raise SqlValidationError(
                job.product_id,
                job.sql_file,
                f"the query can produce NULL but the declared schema says {d_type}",
                fix=f'declare ["null", {d_type!r}] or wrap it in COALESCE(...)',
                column=d["name"],
            )
        if d_type != q_type and (d_type, q_type) not in _WIDENINGS:
            raise SqlValidationError(
                job.product_id,
                job.sql_file,
                f"the query produces {q_type} but the declared schema says {d_type}",
                fix="CAST the column to the declared type, or change the declared schema",
                column=d["name"],
            )


def _split(avro_type: Any) -> tuple[bool, str]:
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        return "null" in avro_type, type_label(rest[0] if len(rest) == 1 else rest)
    return False, type_label(avro_type)


def _mismatch(job: ProcessorJob, want: list[str], got: list[str]) -> SqlValidationError:
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    if missing:
        problem, column = f"the query does not produce declared field {missing[0]!r}", missing[0]
    elif extra:
        problem, column = f"the query produces {extra[0]!r}, which the schema lacks", extra[0]
    else:
        problem, column = f"the query's columns {got} are not in the declared order {want}", None
    return SqlValidationError(
        job.product_id,
        job.sql_file,
        problem,
        fix="make the SELECT list match the declared schema's fields, in order",
        column=column,
    )
