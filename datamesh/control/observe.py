"""Read the running mesh into an :class:`~datamesh.control.observed.Observed`, with few round trips.

Topics: one metadata request and one batched config request. Subjects: the latest versions a
domain at a time (``GET /schemas?latestOnly=true``, else subject by subject) and each subject's
level, read in parallel over keep-alive connections while everything else is read, and — only
for a declared schema that differs from the latest — the registry's verdict under the
declared level. Flink: one ``/jobs/overview``. Connectors: their status files. Iceberg sink
tables: the catalog. ACLs: one ``describe_acls`` (None without an authorizer). A system that
cannot be read is named in ``unreachable`` with the reason (its resources are then left out of
the plan, and ``mesh plan`` says so) — never guessed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import avro.errors
import avro.schema
import psycopg2
from psycopg2.extensions import make_dsn
from pyiceberg.exceptions import NoSuchTableError

from datamesh import endpoints, pauses
from datamesh.cdc import running
from datamesh.control import inventory
from datamesh.control.acls import observe_acls
from datamesh.control.connectors import ConnectorSpec, ObservedConnector, observe_connector
from datamesh.control.connectors import plan as connector_specs
from datamesh.control.desired import DesiredProduct, desired
from datamesh.control.observed import (
    Observed,
    ObservedJob,
    ObservedSubject,
    ObservedTable,
)
from datamesh.control.pausing import JOB_KINDS, observe_latest
from datamesh.errors import MeshError
from datamesh.flink import deployed_inputs
from datamesh.flink.connections import resolve
from datamesh.flink.jobmanager import JobManager
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.registry import compat
from datamesh.schema_client import Registered, SchemaClient
from datamesh.sinks.catalog import open_catalog
from datamesh.specs.partitioning import PartitionField, render
from datamesh.specs.product import DataProduct
from datamesh.topic_plan import ObservedTopic

T = TypeVar("T")
WORKERS = 8


def observe(products: Sequence[DataProduct], control_root: Path | None = None) -> Observed:
    """Everything ``plan`` needs to compare ``products`` with what runs."""
    by_id = {p.id: p for p in products}
    wanted = [desired(p, by_id) for p in products if not p.retired]
    applied = inventory.load_all(control_root)
    unreachable: dict[str, str] = {}

    def guard(system: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except (MeshError, OSError, avro.errors.AvroException) as exc:
            unreachable[system] = endpoints.redact(str(exc))
            return None

    topic_names = {n for d in wanted for n in (d.topic, d.dlq) if n}
    topic_names |= {n for a in applied.values() for n in (a.topic, a.dlq) if n}
    subject_names = {s.subject for d in wanted for s in d.subjects}
    subject_names |= {s for a in applied.values() for s in a.subjects}
    specs = connector_specs([p for p in products if not p.retired])
    needed = {s.name for s in specs}
    orphans = frozenset(
        a.connector
        for a in applied.values()
        if a.connector and a.connector not in needed and running.supervised(a.connector)
    )
    tables = {d.sink_table for d in wanted if d.sink_table and d.product.kind == "iceberg_sink"}
    tables |= {a.sink_table for a in applied.values() if a.sink_table and a.kind == "iceberg_sink"}
    # The registry reads (a level request per subject: the Confluent API has no bulk level read)
    # take longest: they run while the broker, the JobManager, the connectors, the catalog and
    # the ACLs are read (``guard`` only adds keys to ``unreachable``, one per system).
    live_cdc = [p for p in products if not p.retired and p.source is not None]
    with ThreadPoolExecutor(1) as side:
        reading = side.submit(guard, "registry", lambda: _subjects(subject_names, wanted))
        topics = guard("kafka", lambda: _topics(topic_names)) or {}
        jobs = guard("flink", _jobs) or {}
        connectors = guard("connectors", lambda: _connectors(specs)) or {}
        sink_tables = guard("iceberg", lambda: _iceberg_tables(tables)) or {}
        acls = guard("acls", lambda: observe_acls(client_config(endpoints.endpoint("kafka"))))
        columns = guard("postgres", lambda: _table_columns(live_cdc)) or {}
        subjects, refusals = reading.result() or ({}, {})
    jobs_of = [p for p in products if not p.retired and p.kind in JOB_KINDS]
    deployed = {p.id: found for p in jobs_of if (found := deployed_inputs.load(p.id)) is not None}
    registry = SchemaClient(endpoints.endpoint("schema_registry"))
    live = [p for p in products if not p.retired]
    latest = (guard("registry", lambda: observe_latest(live, registry)) or {}) if jobs_of else {}
    return Observed(
        topics=topics,
        subjects=subjects,
        jobs=jobs,
        connectors=connectors,
        orphans=orphans,
        sink_tables=sink_tables,
        applied=applied,
        refusals=refusals,
        unreachable=unreachable,
        acls=acls,
        deployed_inputs=deployed,
        latest_inputs=latest,
        paused=pauses.all_paused(),
        table_columns=columns,
    )


def _table_columns(cdc: Sequence[DataProduct]) -> dict[str, tuple[str, ...]]:
    """Each CDC product's source table columns, one query per source database (a product whose
    table does not exist gets ``()``; a database that does not exist yet is left out)."""
    by_db: dict[str, list[DataProduct]] = {}
    for p in cdc:
        assert p.source is not None
        by_db.setdefault(p.source.database, []).append(p)
    out: dict[str, tuple[str, ...]] = {}
    server = endpoints.endpoint("postgres")
    for database, members in sorted(by_db.items()):
        try:
            conn = psycopg2.connect(make_dsn(server, dbname=database), connect_timeout=5)
        except psycopg2.OperationalError:
            continue  # not created yet: nothing to compare
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT table_schema || '.' || table_name, column_name "
                    "FROM information_schema.columns "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "ORDER BY ordinal_position"
                )
                found: dict[str, list[str]] = {}
                for table, column in cur.fetchall():
                    found.setdefault(table, []).append(column)
        finally:
            conn.close()
        for p in members:
            assert p.source is not None
            out[p.id] = tuple(found.get(f"{p.source.schema}.{p.source.table}", ()))
    return out


def _topics(names: Iterable[str]) -> dict[str, ObservedTopic]:
    return TopicAdmin(client_config(endpoints.endpoint("kafka"))).describe_many(names)


def _registry() -> Callable[[], SchemaClient]:
    """A client per worker thread (each keeps its own connection)."""
    local = threading.local()
    url = endpoints.endpoint("schema_registry")

    def client() -> SchemaClient:
        if not hasattr(local, "client"):
            local.client = SchemaClient(url)
        made: SchemaClient = local.client
        return made

    return client


def _subjects(
    names: Collection[str], wanted: Sequence[DesiredProduct]
) -> tuple[dict[str, ObservedSubject], dict[str, tuple[str, ...]]]:
    client = _registry()
    bulk = _latest_in_bulk(client(), names)

    def read(subject: str) -> tuple[str, ObservedSubject | None]:
        c = client()
        latest = bulk.get(subject) if bulk is not None and "." in subject else c.latest(subject)
        level = c.level(subject)  # one request each: the Confluent API has no bulk level read
        if latest is None and level is None:
            return subject, None
        return subject, ObservedSubject(
            latest.version if latest else None, latest.schema if latest else None, level
        )

    with ThreadPoolExecutor(WORKERS) as pool:
        found = {s: o for s, o in pool.map(read, sorted(names)) if o is not None}
    refusals: dict[str, tuple[str, ...]] = {}
    for d in wanted:
        for want in d.subjects:
            have = found.get(want.subject)
            if want.schema is None or have is None or have.schema is None:
                continue
            if compat.normalize_level(have.level or "BACKWARD") == want.level:
                reasons = client().check(want.subject, want.schema)
            else:  # the level changes in the same apply: judge under the declared one
                previous = avro.schema.parse(json.dumps(have.schema))
                reasons = compat.check(
                    avro.schema.parse(json.dumps(want.schema)),
                    [compat.PreviousVersion(have.version or 0, previous)],
                    want.level,
                )
            if reasons and have.schema != want.schema:
                refusals[want.subject] = tuple(reasons)
    return found, refusals


def _latest_in_bulk(
    client: SchemaClient, subjects: Collection[str]
) -> dict[str, Registered] | None:
    """The latest version of ``subjects`` read a domain at a time (subjects are named
    ``<domain>.…``): one request per domain instead of one per subject, half the requests of a
    no-op plan. None when the registry has no bulk read (then each subject is read alone); a
    subject without a dot is covered by no prefix and read alone."""
    found: dict[str, Registered] = {}
    for prefix in sorted({s.split(".", 1)[0] + "." for s in subjects if "." in s}):
        some = client.latest_by_prefix(prefix)
        if some is None:
            return None
        found |= some
    return found


def _jobs() -> dict[str, ObservedJob]:
    jm = JobManager(resolve().flink_rest_url)
    newest: dict[str, Any] = {}
    for job in jm.jobs():
        have = newest.get(job.name)
        if have is None or job.start_time_ms > have.start_time_ms:
            newest[job.name] = job
    return {name: ObservedJob(job.state) for name, job in newest.items()}


def _connectors(specs: Sequence[ConnectorSpec]) -> dict[str, ObservedConnector]:
    dsn = endpoints.endpoint("postgres")
    out: dict[str, ObservedConnector] = {}
    for spec in specs:
        found = observe_connector(spec, dsn)
        if found is not None:
            out[spec.name] = found
    return out


def _iceberg_tables(names: Collection[str]) -> dict[str, ObservedTable]:
    if not names:
        return {}  # no Iceberg sink declared or recorded: no catalog to open
    catalog = open_catalog()
    out: dict[str, ObservedTable] = {}
    for ident in sorted(names):
        try:
            table = catalog.load_table(ident)
        except NoSuchTableError:
            continue
        schema = table.schema()
        parts = tuple(
            render(PartitionField(name, schema.find_column_name(f.source_id) or "", arg))
            for f in table.spec().fields
            for name, arg in [_transform(str(f.transform))]
        )
        out[ident] = ObservedTable(tuple(f.name for f in schema.fields), parts)
    return out


def _transform(text: str) -> tuple[str, int | None]:
    """pyiceberg's ``str(transform)`` (``identity``, ``day``, ``bucket[16]``, ``truncate[4]``)
    as (name, argument)."""
    name, _, arg = text.partition("[")
    return name, int(arg.rstrip("]")) if arg else None
