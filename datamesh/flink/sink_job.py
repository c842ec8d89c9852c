"""A ``postgres_sink`` as a Flink SQL job: ``SELECT <columns> FROM <input>`` into a JDBC table.

The input is read exactly as processors read it (CDC topics as a ``changelog`` through
``mesh-debezium-avro``, keyed processor outputs as ``upsert`` through ``upsert-kafka``; poison
messages go to the sink's dead-letter topic ``<domain>.<product>.dlq``). The sink table is Flink's
``jdbc`` connector with ``PRIMARY KEY (<key>) NOT ENFORCED``, so inserts and updates become
``INSERT ... ON CONFLICT DO UPDATE`` and deletes (``op = d``, tombstones) ``DELETE``.

The columns follow the input's *latest registered* value schema (a CDC envelope's ``after``
record), else its declared one: a column added upstream changes the job's SQL, hence its hash, so
redeploying adds the column to the table and upgrades the job.

Passwords: the JDBC URL and the job's SQL never carry one. Flink's JDBC connector has no
environment indirection for ``password``, so when the mesh's PostgreSQL DSN has a password the
job is deployed without it and the PostgreSQL JDBC driver (pgjdbc >= 42.3) reads it from the
``.pgpass`` file that ``PGPASSFILE`` names in the JobManager's and TaskManagers' environment (on
Kubernetes: mount the secret as a file and set ``PGPASSFILE``). The embedded PostgreSQL trusts
loopback connections and needs none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote_plus

from psycopg2.extensions import parse_dsn

from datamesh import heartbeat, names
from datamesh.errors import SpecError, TerminalError
from datamesh.flink.job import JdbcTarget, JobSettings, ProcessorJob, input_table
from datamesh.flink.types import quote
from datamesh.sinks.postgres import table_columns
from datamesh.specs.product import DataProduct

log = logging.getLogger("datamesh.flink")
_URL_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout")


def row_schema(registered: Mapping[str, Any] | None, declared: Mapping[str, Any] | None) -> Any:
    """The input's row record: the registered schema (a CDC envelope's ``after`` record), else
    the declared one; None when there is neither."""
    if registered is None:
        return declared
    fields = {f["name"]: f["type"] for f in registered.get("fields", [])}
    if not {"before", "after", "op"} <= set(fields):
        return registered
    named = _named_records(registered)
    after = fields["after"]
    branches = after if isinstance(after, list) else [after]
    for branch in branches:
        if isinstance(branch, dict) and branch.get("type") == "record":
            return branch
        if isinstance(branch, str) and branch in named:
            return named[branch]
    raise TerminalError(
        f"schema {registered.get('name')}: an envelope whose `after` is not a record",
        fix="register a Debezium envelope (before/after row records) for the CDC topic",
    )


def _named_records(schema: Any, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every record defined inside ``schema``, by simple and full name."""
    out = {} if out is None else out
    if isinstance(schema, list):
        for branch in schema:
            _named_records(branch, out)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            out[schema["name"]] = schema
            if schema.get("namespace"):
                out[f"{schema['namespace']}.{schema['name']}"] = schema
            for f in schema.get("fields", []):
                _named_records(f["type"], out)
        elif isinstance(schema.get("type"), dict | list):
            _named_records(schema["type"], out)
    return out


def jdbc_url(dsn: str, database: str) -> tuple[str, str | None, bool]:
    """(``jdbc:postgresql://host:port/database``, user, whether the DSN has a password).

    The password itself is left out; see the module docstring for how the driver gets it.
    """
    parts = parse_dsn(dsn)
    host = parts.get("host") or "127.0.0.1"
    if host.startswith("/"):
        raise TerminalError(
            f"PostgreSQL DSN points at a Unix socket ({host}); Flink's JDBC sink needs TCP",
            fix="set MESH_POSTGRES_DSN to a host:port DSN",
        )
    # The user goes in the URL: the connector takes `username` only together with `password`.
    query = {"user": parts.get("user"), **{k: parts.get(k) for k in _URL_OPTIONS}}
    options = "&".join(f"{k}={quote_plus(str(v))}" for k, v in query.items() if v)
    url = f"jdbc:postgresql://{host}:{parts.get('port') or 5432}/{database}"
    return (
        url + (f"?{options}" if options else ""),
        parts.get("user"),
        bool(parts.get("password")),
    )


def sink_job(
    product: DataProduct,
    products: Mapping[str, DataProduct],
    registered: Mapping[str, Any] | None,
    dsn: str,
    settings: JobSettings | None = None,
) -> ProcessorJob:
    """The job of ``postgres_sink`` ``product``; ``registered`` is its input's latest value schema.

    ``dsn`` is the server's PostgreSQL DSN; the job targets ``product.sink.database`` on it.
    """
    file = str(product.declared_in)
    if product.kind != "postgres_sink" or product.sink is None or len(product.inputs) != 1:
        raise SpecError(file, product.name, f"a {product.kind} product has no JDBC sink job", "-")
    source = products[product.inputs[0]]
    row = row_schema(registered, source.value_schema)
    table = input_table(source, file, None, row)
    key = product.key
    missing = [k for k in key if k not in {n for n, _ in table.columns}]
    if missing:
        raise SpecError(
            file, f"{product.name}.key", f"key column {missing[0]!r} is not in {source.id}", "-"
        )
    pg = dict(table_columns(row))
    # Key columns (the input's and the sink's) are NOT NULL: primary keys on both sides.
    required = {*table.key, *key}
    table = replace(
        table, columns=tuple((n, _not_null(t) if n in required else t) for n, t in table.columns)
    )
    url, _, has_password = jdbc_url(dsn, product.sink.database)
    if has_password:
        log.info("%s: the JDBC password is read by the driver from PGPASSFILE", product.id)
    columns = tuple((n, _sink_type(t, pg[n]), pg[n]) for n, t in table.columns)
    target = JdbcTarget(
        url, product.sink.database, product.sink.pg_schema, product.sink.pg_table, columns
    )
    return ProcessorJob(
        product_id=product.id,
        name=names.flink_job(product),
        sql=select_sql(table.product_id, table.columns, columns),
        sql_file=f"{product.declared_in} ({product.name}: generated SELECT)",
        inputs=(table,),
        output_topic="",
        key=key,
        declared_schema=dict(row),
        declared_in=file,
        settings=settings or JobSettings(),
        jdbc=target,
        heartbeats=heartbeat.sources(product.id, products),
    )


def select_sql(
    source: str,
    inputs: tuple[tuple[str, str], ...],
    columns: tuple[tuple[str, str, str], ...],
) -> str:
    """``SELECT`` every column of ``source``, cast to STRING where the table stores text."""
    have = dict(inputs)
    items = [
        quote(n)
        if have[n].removesuffix(" NOT NULL") == t
        else f"CAST({quote(n)} AS {t}) AS {quote(n)}"
        for n, t, _ in columns
    ]
    return f"SELECT {', '.join(items)}\nFROM {quote(source)}"


def _sink_type(flink_type: str, pg: str) -> str:
    """The sink column's Flink type: STRING for text columns fed by another type."""
    bare = flink_type.removesuffix(" NOT NULL")
    return "STRING" if pg == "text" and bare != "STRING" else bare


def _not_null(flink_type: str) -> str:
    return flink_type if flink_type.endswith(" NOT NULL") else f"{flink_type} NOT NULL"
