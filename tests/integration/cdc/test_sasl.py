"""The connector publishes through Kafka SASL (the embedded broker's SASL listener) with the
password taken from its environment: not on its command line, not in its log or status file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from datamesh.kafka_config import SECURITY_ENV
from tests.integration.cdc.conftest import DOMAIN, RunningConnector, SourceDb, TopicReader

pytestmark = pytest.mark.integration


def test_changes_flow_through_sasl(
    source_db: SourceDb,
    connector: Callable[..., RunningConnector],
    reader: TopicReader,
    sasl_bootstrap: str,
) -> None:
    table = f"public.accounts_{uuid.uuid4().hex[:8]}"
    source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, owner text)")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
    run = connector((table,), snapshot="never", bootstrap=sasl_bootstrap).start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming over SASL")
    source_db.sql(f"INSERT INTO {table} VALUES (1, 'ana'), (2, 'bo')")
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")  # read back over the plaintext listener
    assert [(k["id"], v["op"], v["after"]) for k, v in events] == [
        (1, "c", {"id": 1, "owner": "ana"}),
        (2, "c", {"id": 2, "owner": "bo"}),
    ]
    password = os.environ[SECURITY_ENV["sasl.password"]]
    assert password not in Path(f"/proc/{run.pid}/cmdline").read_bytes().decode(errors="replace")
    assert password not in run.log.read_text() and password not in run.status_file.read_text()
