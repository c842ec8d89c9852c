"""What a processor job is, independent of any cluster: frozen values built from declarations.

A :class:`ProcessorJob` holds everything the SQL is generated from — inputs with their columns and
changelog kind, the user query, the output topic and key, the declared output schema and the
runtime settings. Two equal jobs generate the same statements, hence the same hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from datamesh import heartbeat, names
from datamesh.errors import SpecError
from datamesh.flink.types import UnsupportedType, Watermark, avro_to_sql
from datamesh.specs.product import DataProduct, TopicSettings

InputMode = Literal["changelog", "append", "upsert"]
Delivery = Literal["at-least-once", "exactly-once"]
ChangelogMode = Literal["upsert", "all"]


@dataclass(frozen=True)
class InputTable:
    """One input product as a Flink table named by its product id.

    ``mode``: ``changelog`` for CDC topics (Debezium envelopes), ``upsert`` for keyed processor
    outputs (latest value per key, tombstones delete), ``append`` for everything else.
    """

    product_id: str
    topic: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    mode: InputMode
    watermark: Watermark | None = None


@dataclass(frozen=True)
class JobSettings:
    """Runtime settings; at-least-once with a 10 s checkpoint interval by default.

    ``exactly-once`` writes through Kafka transactions committed on checkpoints (consumers must
    read with ``isolation.level=read_committed``). ``changelog_mode`` is how CDC inputs are read:
    ``upsert`` works with any REPLICA IDENTITY, ``all`` needs REPLICA IDENTITY FULL.
    """

    parallelism: int = 1
    checkpoint_interval_ms: int = 10_000
    delivery: Delivery = "at-least-once"
    changelog_mode: ChangelogMode = "upsert"
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class JdbcTarget:
    """The PostgreSQL table a ``postgres_sink`` job upserts into through Flink's ``jdbc`` sink.

    ``url`` is ``jdbc:postgresql://host:port/database?user=...`` and never carries a password;
    ``columns`` are (name, Flink type, PostgreSQL type) in the table's order.
    """

    url: str
    database: str
    schema: str
    table: str
    columns: tuple[tuple[str, str, str], ...]

    @property
    def qualified(self) -> str:
        """``schema.table``."""
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class ProcessorJob:
    """A processor product as a streaming SQL job; with ``jdbc`` set, a ``postgres_sink``'s job
    (its query's result is upserted into that table, and ``output_topic`` is empty)."""

    product_id: str
    name: str
    sql: str
    sql_file: str
    inputs: tuple[InputTable, ...]
    output_topic: str
    key: tuple[str, ...]
    declared_schema: dict[str, Any] | None
    declared_in: str
    settings: JobSettings = field(default_factory=JobSettings)
    topic: TopicSettings | None = None
    jdbc: JdbcTarget | None = None
    heartbeats: tuple[str, ...] = ()  # upstream heartbeat sources: the job forwards their beats

    @property
    def dlq_topic(self) -> str:
        """Where this job's poison input messages go (``<output topic>.dlq``; a sink's
        ``<domain>.<product>.dlq``)."""
        return names.dlq_topic(self.output_topic or self.product_id)

    @property
    def sink_table(self) -> str:
        """The Flink table the query is inserted into (named by the product id)."""
        return self.product_id


def from_product(
    product: DataProduct,
    products: Mapping[str, DataProduct],
    settings: JobSettings | None = None,
    watermarks: Mapping[str, Watermark] | None = None,
    processor: Mapping[str, Any] | None = None,
    registered: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProcessorJob:
    """The job of processor ``product``; ``products`` maps product ids to products.

    ``processor`` is the proposed typed declaration (``{type: filter, where: ...}``, see
    :mod:`datamesh.flink.templates`); without it (or with ``type: sql``) the product's SQL runs.
    ``registered`` maps input ids to the row record of their latest registered value schema:
    those inputs are read with :func:`read_schema` (the registered columns), the others with
    their declared schema. Raises :class:`SpecError` when there is no query, or an input has no
    Avro schema or a type the format cannot carry.
    """
    from datamesh.flink import templates  # local: the SQL templates load only for typed ones

    file = str(product.declared_in)
    spec = dict(processor or {"type": "sql"})
    marks = dict(watermarks or {})
    rows = {
        pid: read_schema(products[pid].value_schema, (registered or {}).get(pid))
        for pid in product.inputs
    }
    if product.kind != "processor":
        raise SpecError(file, product.name, f"a {product.kind} product has no Flink job", "-")
    if spec.get("type", "sql") == "sql":
        if not product.sql:
            raise SpecError(file, f"{product.name}.sql", "a SQL processor needs `sql:`", "add it")
        sql = product.sql
    else:
        columns = {pid: _names(rows[pid]) for pid in product.inputs}
        try:
            sql = templates.processor_sql(spec, columns)
            marks = {**templates.watermarks(spec, product.inputs), **marks}
        except (templates.TemplateError, ValueError) as exc:
            fix = "fix the declaration"
            raise SpecError(file, f"{product.name}.processor", str(exc), fix) from None
    inputs = tuple(
        input_table(products[pid], file, marks.get(pid), rows[pid]) for pid in product.inputs
    )
    return ProcessorJob(
        product_id=product.id,
        name=names.flink_job(product),
        sql=sql.strip().rstrip(";"),
        sql_file=_query_source(product),
        inputs=inputs,
        output_topic=names.topic(product),
        key=product.key,
        declared_schema=product.value_schema,
        declared_in=file,
        settings=settings or JobSettings(),
        topic=product.topic,
        heartbeats=heartbeat.sources(product.id, products),
    )


def input_table(
    p: DataProduct,
    file: str,
    watermark: Watermark | None,
    row_schema: Mapping[str, Any] | None = None,
) -> InputTable:
    """``p`` as a source table; its columns from ``row_schema`` (else its declared schema)."""
    schema = row_schema or p.value_schema
    if not schema:
        raise SpecError(file, p.id, "input has no Avro schema", f"add `schema:` to {p.declared_in}")
    try:
        columns = tuple((f["name"], avro_to_sql(f["type"])) for f in schema["fields"])
    except UnsupportedType as exc:
        raise SpecError(
            str(p.declared_in), f"{p.name}.schema", str(exc), "use a supported type"
        ) from None
    if p.kind == "cdc":
        mode: InputMode = "changelog"
    else:
        mode = "upsert" if p.key else "append"
    return InputTable(p.id, names.topic(p), columns, p.key, mode, watermark)


def read_schema(
    declared: Mapping[str, Any] | None, registered: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The row record a job reads an input with: the columns of its *registered* record, in
    the registered order — a column the declaration also has keeps its declared type and
    nullability (the consumer's contract; the CDC connector registers every column optional),
    a column added upstream comes as registered, and a column dropped upstream is gone. The
    declared record when nothing is registered."""
    if registered is None or not registered.get("fields"):
        return dict(declared) if declared is not None else None
    if declared is None:
        return dict(registered)
    known = {f["name"]: f for f in declared.get("fields", [])}
    fields = [known.get(f["name"], f) for f in registered["fields"]]
    return {**declared, "fields": fields}


def _names(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    return tuple(f["name"] for f in (schema or {}).get("fields", []))


def _query_source(product: DataProduct) -> str:
    """Where the job's query was declared, for error messages (``file.sql:line:col``)."""
    if product.sql and product.sql_file:
        return str(product.sql_file)
    suffix = "sql" if product.sql else "processor"
    return f"{product.declared_in} ({product.name}.{suffix})"
