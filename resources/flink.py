"""Flink as a Dagster resource: deploys, inspects, upgrades and stops processor jobs and the
streaming JDBC jobs of ``postgres_sink`` products."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from datamesh import endpoints, names
from datamesh.flink import FlinkJobs, JobSettings, JobStatus, ProcessorJob, from_product
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.sink_job import sink_job
from datamesh.schema_client import SchemaClient
from datamesh.specs.durations import parse_duration
from datamesh.specs.product import DataProduct


def job_for(
    product: DataProduct, products: Mapping[str, DataProduct], conn: Connections | None = None
) -> ProcessorJob:
    """The Flink job of a processor or ``postgres_sink`` product, with its ``flink:`` settings.

    A sink's columns come from its input's latest registered value schema (else its declared
    one), so building it reads the registry (``conn``, else the current environment's).
    """
    if product.kind == "postgres_sink":
        return sink_job_for(product, products, conn)
    return from_product(product, products, settings_of(product), processor=product.processor)


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


def settings_of(product: DataProduct) -> JobSettings:
    """The declaration's ``flink:`` settings as job settings."""
    f = product.flink
    return JobSettings(
        parallelism=int(f.get("parallelism", 1)),
        checkpoint_interval_ms=int(
            parse_duration(f.get("checkpoint_interval", "10s")).total_seconds() * 1000
        ),
        delivery=f.get("delivery", "at-least-once"),
        changelog_mode=f.get("changelog_mode", "upsert"),
    )


class FlinkResource(dg.ConfigurableResource):
    """Processor and postgres_sink jobs on the Flink cluster behind the SQL Gateway
    (``MESH_FLINK_REST_URL`` / ``MESH_FLINK_SQL_GATEWAY_URL``, or the ones ``mesh up`` started)."""

    def jobs(self) -> FlinkJobs:
        """Job lifecycle operations: deploy, status, upgrade, stop with savepoint, cancel."""
        return FlinkJobs()

    def deploy(self, product: DataProduct, products: Mapping[str, DataProduct]) -> JobStatus:
        """Validate, then run the product's job as declared (idempotent; upgrades on change)."""
        strategy = product.flink.get("on_incompatible", "from-offsets")
        return self.jobs().deploy(job_for(product, products), on_incompatible=strategy)

    def deploy_sink(self, product: DataProduct, by_id: Mapping[str, DataProduct]) -> JobStatus:
        """Make a ``postgres_sink``'s JDBC job run (idempotent; upgrades on change).

        Validates the job, creates the database, schema and table when missing and adds the
        columns a compatible upstream change brought (a type clash or a missing key raises
        ``SinkTableMismatch`` with nothing deployed), then starts or upgrades the job from a
        savepoint (``flink.on_incompatible`` when the state no longer fits).
        """
        jobs = self.jobs()
        strategy = product.flink.get("on_incompatible", "from-offsets")
        return jobs.deploy(sink_job_for(product, by_id, jobs.conn), on_incompatible=strategy)


def status_metadata(status: JobStatus) -> dict[str, Any]:
    """Asset metadata of a job status."""
    checkpoint = status.last_checkpoint
    return {
        "flink_job": status.name,
        "job_state": status.state,
        "job_id": status.job_id or "",
        "job_action": status.action,
        "sql_hash": status.sql_hash or "",
        "restarts": status.restarts,
        "records_in": status.records_in,
        "records_out": status.records_out,
        "dead_letters": status.dead_letters,
        "last_checkpoint_id": checkpoint.id if checkpoint else -1,
    }
