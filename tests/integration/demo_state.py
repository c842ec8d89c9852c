"""The demo's state on the session's stack, removed between the tests that use the demo.

Those tests share one stack; without a reset, one test's dead letter, rows or committed offsets
become the next one's starting point (a dead letter written by one made the next one's
``dead_letters`` check fail). ``reset_demo`` stops the demo's jobs and connectors and deletes
its topics, subjects, replication slots, databases and Iceberg tables.
"""

from __future__ import annotations

import contextlib

import psycopg2
import requests
from pyiceberg.exceptions import NoSuchTableError

from datamesh import endpoints, names
from datamesh.cdc import running
from datamesh.checks.evaluate import dlq_topic
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR
from resources.flink import FlinkResource
from resources.iceberg import IcebergResource
from resources.kafka import KafkaResource

DATABASES = ("studio", "content", "serving")


def reset_demo() -> None:
    """Stop and delete everything the demo products made (idempotent)."""
    products = load_products(DOMAINS_DIR)
    jobs = FlinkResource().jobs()
    for p in products:
        if p.kind in ("processor", "postgres_sink"):
            jobs.cancel(names.flink_job(p))
    running.stop_all()
    admin = KafkaResource().admin()
    topics = [names.topic(p) for p in products if p.is_kafka_backed]
    for topic in [*topics, *(t for t in map(dlq_topic, products) if t)]:
        admin.delete(topic)
    url, auth = endpoints.endpoint("schema_registry"), _auth()
    for topic in topics:
        for subject in (names.key_subject(topic), names.value_subject(topic)):
            for permanent in ("false", "true"):  # a permanent delete needs a soft one first
                requests.delete(
                    f"{url}/subjects/{subject}", params={"permanent": permanent}, auth=auth,
                    timeout=10,
                )  # fmt: skip
    catalog = IcebergResource().catalog()
    for p in products:
        if p.kind == "iceberg_sink":
            with contextlib.suppress(NoSuchTableError):
                catalog.drop_table(".".join(names.iceberg_table(p)))
    _drop_databases()


def _drop_databases() -> None:
    server = psycopg2.connect(endpoints.endpoint("postgres"))
    server.autocommit = True
    with server.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = ANY(%s) AND NOT active",
            (list(DATABASES),),
        )
        for database in DATABASES:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    server.close()


def _auth() -> tuple[str, str] | None:
    info = endpoints.registry_user_info()
    if not info:
        return None
    user, _, password = info.partition(":")
    return user, password
