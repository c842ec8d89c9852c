"""Flink as a Dagster resource: deploys, inspects, upgrades and stops processor jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from datamesh.flink import FlinkJobs, JobSettings, JobStatus, ProcessorJob, from_product
from datamesh.specs.durations import parse_duration
from datamesh.specs.product import DataProduct


def job_for(product: DataProduct, products: Mapping[str, DataProduct]) -> ProcessorJob:
    """The Flink job of a processor product, with the declaration's ``flink:`` settings."""
    f = product.flink
    settings = JobSettings(
        parallelism=int(f.get("parallelism", 1)),
        checkpoint_interval_ms=int(
            parse_duration(f.get("checkpoint_interval", "10s")).total_seconds() * 1000
        ),
        delivery=f.get("delivery", "at-least-once"),
        changelog_mode=f.get("changelog_mode", "upsert"),
    )
    return from_product(product, products, settings, processor=product.processor)


class FlinkResource(dg.ConfigurableResource):
    """Processor jobs on the Flink cluster behind the SQL Gateway (``MESH_FLINK_REST_URL`` /
    ``MESH_FLINK_SQL_GATEWAY_URL``, or the ones ``mesh up`` started)."""

    def jobs(self) -> FlinkJobs:
        """Job lifecycle operations: deploy, status, upgrade, stop with savepoint, cancel."""
        return FlinkJobs()

    def deploy(self, product: DataProduct, products: Mapping[str, DataProduct]) -> JobStatus:
        """Validate, then run the product's job as declared (idempotent; upgrades on change)."""
        strategy = product.flink.get("on_incompatible", "from-offsets")
        return self.jobs().deploy(job_for(product, products), on_incompatible=strategy)


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
