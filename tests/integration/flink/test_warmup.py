"""``mesh dev``'s SQL Gateway warm-up plans on the real gateway and deploys nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

from datamesh.flink import FlinkJobs
from datamesh.flink.connections import Connections
from datamesh.stack.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_the_warm_up_plans_without_running_or_creating_anything(
    flink: FlinkJobs, conn: Connections
) -> None:
    before = {j.job_id for j in flink.jm.jobs()}
    done = subprocess.run(
        [sys.executable, "-m", "datamesh.flink.warmup"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SQL Gateway warmed in "), done.stdout
    assert {j.job_id for j in flink.jm.jobs()} == before  # EXPLAIN only: no job submitted
    topics = AdminClient(dict(conn.kafka)).list_topics(timeout=10).topics
    assert "mesh.warmup" not in topics and "mesh.warmup.dlq" not in topics
