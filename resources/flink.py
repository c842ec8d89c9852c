"""Flink as a Dagster resource: deploys, inspects, upgrades and stops processor jobs and the
streaming JDBC jobs of ``postgres_sink`` products.

The declaration -> job mapping and the ``flink:`` defaults live in :mod:`datamesh.flink.declared`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from datamesh.flink import FlinkJobs, JobStatus, UpgradeFailed
from datamesh.flink.declared import deploy_declared
from datamesh.specs.product import DataProduct


class FlinkResource(dg.ConfigurableResource):
    """Processor and postgres_sink jobs on the Flink cluster behind the SQL Gateway
    (``MESH_FLINK_REST_URL`` / ``MESH_FLINK_SQL_GATEWAY_URL``, or the ones ``mesh up`` started)."""

    def jobs(self) -> FlinkJobs:
        """Job lifecycle operations: deploy, status, upgrade, stop with savepoint, cancel."""
        return FlinkJobs()

    def deploy(self, product: DataProduct, products: Mapping[str, DataProduct]) -> JobStatus:
        """Validate, then run the product's job as declared (idempotent; upgrades on change).
        An upgrade whose new job failed is a ``dg.Failure`` (see :func:`upgrade_failure`)."""
        try:
            return deploy_declared(self.jobs(), product, products)
        except UpgradeFailed as exc:
            raise upgrade_failure(exc) from exc

    def deploy_sink(self, product: DataProduct, by_id: Mapping[str, DataProduct]) -> JobStatus:
        """Make a ``postgres_sink``'s JDBC job run (idempotent; upgrades on change): see
        :func:`datamesh.flink.declared.deploy_declared` and :meth:`deploy`."""
        return self.deploy(product, by_id)


def upgrade_failure(exc: UpgradeFailed) -> dg.Failure:
    """The failed materialization of an upgrade whose new job failed: the message names the
    cause and the savepoint the previous job runs from again; the metadata has them apart."""
    return dg.Failure(
        description=str(exc),
        metadata={
            "flink_job": exc.job,
            "job_action": "rolled-back" if exc.running_job_id else "failed",
            "failed_job_id": exc.failed_job_id or "",
            "cause": exc.cause,
            "restored_from": exc.savepoint,
            "job_id": exc.running_job_id or "",
        },
    )


def status_metadata(status: JobStatus) -> dict[str, Any]:
    """Asset metadata of a job status: ``restored_from`` is the savepoint or checkpoint the job
    started from, ``on_incompatible`` the declared strategy applied because that state did not
    fit (``none`` when it was not needed)."""
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
        "restored_from": status.restored_from or "",
        "on_incompatible": status.on_incompatible or "none",
    }


def job_log_line(status: JobStatus) -> str:
    """The run log's line for a deployment: what was done, from which state, which strategy."""
    line = f"flink job {status.name}: {status.action} ({status.state})"
    if status.restored_from:
        line += f"; restored from {status.restored_from}"
    if status.on_incompatible:
        line += f"; state did not fit, on_incompatible {status.on_incompatible!r} applied"
    return line
