"""Flink as a Dagster resource: deploys, inspects, upgrades and stops processor jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import requests

from datamesh import endpoints
from datamesh.errors import TransientError
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
    """A Flink cluster (``MESH_FLINK_REST_URL`` or the session cluster ``mesh up`` started)."""

    rest_url: str | None = None

    def url(self) -> str:
        """Base REST URL."""
        return (self.rest_url or endpoints.endpoint("flink")).rstrip("/")

    def jobs(self) -> FlinkJobs:
        """Job lifecycle operations on this cluster (through the SQL Gateway)."""
        return FlinkJobs()

    def deploy(self, product: DataProduct, products: Mapping[str, DataProduct]) -> JobStatus:
        """Validate, then run the product's job as declared (idempotent; upgrades on change)."""
        strategy = product.flink.get("on_incompatible", "from-offsets")
        return self.jobs().deploy(job_for(product, products), on_incompatible=strategy)

    def overview(self) -> dict[str, Any]:
        """Cluster overview: task managers, slots, running jobs."""
        try:
            resp = requests.get(f"{self.url()}/overview", timeout=10)
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise TransientError(
                f"Flink REST {self.url()} did not answer: {exc}",
                fix="run `mesh up` or check MESH_FLINK_REST_URL",
            ) from exc
        return dict(resp.json())


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
