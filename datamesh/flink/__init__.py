"""Flink processors: processor products as streaming SQL jobs over Confluent-framed Avro topics.

``FlinkJobs`` (deploy / status / stop_with_savepoint / upgrade / cancel) is what the Dagster
resource and the ``mesh`` commands wrap; ``declared.job_for`` is the job a declaration asks for
(with its ``flink:`` settings); ``from_product`` turns a processor declaration into a
``ProcessorJob``, ``sink_job`` a ``postgres_sink`` into one that upserts into PostgreSQL through
Flink's ``jdbc`` connector; ``column_lineage`` derives field-level lineage from a processor's SQL.
"""

from datamesh.flink.deploy import FlinkJobs, Strategy
from datamesh.flink.errors import (
    JobFailed,
    JobStateIncompatible,
    SqlValidationError,
    UpgradeFailed,
)
from datamesh.flink.job import (
    InputTable,
    JdbcTarget,
    JobSettings,
    ProcessorJob,
    from_product,
)
from datamesh.flink.sink_job import sink_job
from datamesh.flink.status import Checkpoint, JobStatus
from datamesh.flink.types import Watermark
from datamesh.flink.validate import Plan

__all__ = [
    "Checkpoint",
    "FlinkJobs",
    "InputTable",
    "JdbcTarget",
    "JobFailed",
    "JobSettings",
    "JobStateIncompatible",
    "JobStatus",
    "Plan",
    "ProcessorJob",
    "SqlValidationError",
    "Strategy",
    "UpgradeFailed",
    "Watermark",
    "from_product",
    "sink_job",
]
