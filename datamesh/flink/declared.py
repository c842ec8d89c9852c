"""The Flink job a declaration asks for: the one mapping from a product to its job and settings.

``job_for`` is what the Dagster resource, ``mesh flink`` and the lineage builder run; the
``flink:`` defaults are those of :class:`datamesh.specs.declaration.FlinkDecl`, the only place
they are written down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from datamesh import endpoints, names, pauses
from datamesh.flink import deployed_inputs
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.deploy import FlinkJobs
from datamesh.flink.job import JobSettings, ProcessorJob, from_product
from datamesh.flink.sink_job import row_schema, sink_job
from datamesh.flink.status import JobStatus
from datamesh.schema_client import SchemaClient
from datamesh.specs.declaration import FlinkDecl, OnIncompatible
from datamesh.specs.durations import parse_duration
from datamesh.specs.product import DataProduct

log = logging.getLogger("datamesh.flink")


def job_for(
    product: DataProduct,
    products: Mapping[str, DataProduct],
    conn: Connections | None = None,
    registered: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProcessorJob:
    """The Flink job of a processor or ``postgres_sink`` product, with its ``flink:`` settings.

    Inputs are read with their latest registered value schema (a CDC envelope's row record),
    not a copy of the upstream's declaration: a processor's input columns are the registered
    ones (:func:`datamesh.flink.job.read_schema`), a sink's columns its input's registered
    record (else the declared one). Building it reads the registry (``conn``, else the current
    environment's) unless ``registered`` gives a processor's input rows (by input id).
    """
    if product.kind == "postgres_sink":
        return sink_job_for(product, products, conn)
    if registered is None:
        registered = registered_rows(product, products, conn)
    return from_product(
        product, products, settings_of(product), processor=product.processor, registered=registered
    )


def registered_rows(
    product: DataProduct, products: Mapping[str, DataProduct], conn: Connections | None = None
) -> dict[str, dict[str, Any]]:
    """The row record of each input's latest registered value schema, by input id (inputs with
    nothing registered yet are left out)."""
    conn = conn or resolve()
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    out = {}
    for pid in product.inputs:
        latest = registry.latest(names.value_subject(names.topic(products[pid])))
        if latest is not None:
            out[pid] = dict(row_schema(latest.schema, None))
    return out


def deploy_declared(
    jobs: FlinkJobs,
    product: DataProduct,
    products: Mapping[str, DataProduct],
    resume_from: str | None = None,
) -> JobStatus:
    """Validate, then run the product's job as declared: idempotent, upgraded from a savepoint
    on change, ``flink.on_incompatible`` applied when the state no longer fits. For a
    ``postgres_sink`` this also creates its database, schema and table when missing and adds
    the columns a compatible upstream change brought (a type clash or a missing key raises
    ``SinkTableMismatch`` with nothing deployed). Used by the Dagster resource and ``mesh flink``.

    A product whose pipeline an upstream schema change paused (:mod:`datamesh.pauses`) is left
    stopped: the status says ``paused``. Only the schema controller resumes it, passing
    ``resume_from`` (the pause's savepoint). The first deployment records the inputs' registered
    schemas (:mod:`datamesh.flink.deployed_inputs`); later ones leave that to the controller,
    which decides per consumer whether an upstream change propagates.
    """
    if resume_from is None and (pause := pauses.load(product.id)) is not None:
        log.warning("%s: not deployed: %s", product.id, pause.describe())
        return jobs.status(names.flink_job(product)).with_action("paused")
    first = deployed_inputs.load(product.id) is None
    inputs = input_schemas(product, products, jobs.conn) if first else {}
    job = job_for(product, products, jobs.conn)
    status = jobs.deploy(job, on_incompatible=on_incompatible(product), restore_from=resume_from)
    if first:
        deployed_inputs.save(product.id, inputs)
    return status


def upgrade_declared(
    jobs: FlinkJobs, product: DataProduct, products: Mapping[str, DataProduct]
) -> JobStatus:
    """Stop the product's job with a savepoint and start its declared job from it — or, when
    none runs, from the newest recorded savepoint or checkpoint — applying
    ``flink.on_incompatible`` when the state no longer fits. Used by ``mesh flink upgrade``.
    A paused product stays paused (see :func:`deploy_declared`)."""
    pause = pauses.load(product.id)
    if pause is not None:
        log.warning("%s: not upgraded: %s", product.id, pause.describe())
        return jobs.status(names.flink_job(product)).with_action("paused")
    job = job_for(product, products, jobs.conn)
    return jobs.upgrade(job, on_incompatible=on_incompatible(product))


def input_schemas(
    product: DataProduct, products: Mapping[str, DataProduct], conn: Connections | None = None
) -> dict[str, deployed_inputs.InputSchema]:
    """The latest registered value schema of each of ``product``'s inputs, by input id (inputs
    with nothing registered yet are left out)."""
    conn = conn or resolve()
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    out = {}
    for pid in product.inputs:
        latest = registry.latest(names.value_subject(names.topic(products[pid])))
        if latest is not None:
            out[pid] = deployed_inputs.InputSchema(
                latest.subject, latest.id, latest.version, latest.schema
            )
    return out


def sink_job_for(
    product: DataProduct, products: Mapping[str, DataProduct], conn: Connections | None = None
) -> ProcessorJob:
    """The Flink JDBC job of a ``postgres_sink``, from its input's latest registered schema."""
    conn = conn or resolve()
    source = products[product.inputs[0]]
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    latest = registry.latest(names.value_subject(names.topic(source)))
    registered = latest.schema if latest is not None else None
    dsn = endpoints.endpoint("postgres")
    return sink_job(product, products, registered, dsn, settings_of(product))


def flink_settings(product: DataProduct) -> FlinkDecl:
    """The product's ``flink:`` block with the declaration's defaults filled in."""
    return FlinkDecl.model_validate(product.flink)


def settings_of(product: DataProduct) -> JobSettings:
    """The declaration's ``flink:`` settings as job settings."""
    f = flink_settings(product)
    return JobSettings(
        parallelism=f.parallelism,
        checkpoint_interval_ms=int(parse_duration(f.checkpoint_interval).total_seconds() * 1000),
        delivery=f.delivery,
        changelog_mode=f.changelog_mode,
    )


def on_incompatible(product: DataProduct) -> OnIncompatible:
    """What a redeploy does when the job's state no longer fits (``flink.on_incompatible``)."""
    return flink_settings(product).on_incompatible
