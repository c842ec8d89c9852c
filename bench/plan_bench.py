"""No-op ``plan`` and ``apply`` of N generated CDC products against the bench stack.

N CDC products, 100 tables per source database (one domain per database, so one connector per
100 products), are declared in a temporary domains folder, their databases and tables created in
the stack's PostgreSQL, and applied once (``first_apply_<n>_s``: subject levels, topics, one
connector per database). Then, with nothing to change:

- ``noop_plan_<n>_s``: ``observe`` + ``plan``, median of 3 (the plan must be empty);
- ``noop_apply_<n>_s``: ``apply`` (observe, plan, record the inventory; no outcome);
- ``raw_reads_<n>_s``: the reads the observation needs, done directly: one
  ``AdminClient.list_topics`` + one batched ``describe_configs`` of the products' topics, and a
  plain GET of each subject's latest version and of its level, sequentially over one
  ``requests.Session``; ``ratio_vs_raw_reads_<n>`` = raw / plan (above 1: the plan reads faster
  than the sequential floor, through its parallel registry reads).

No Flink job is declared: a no-op plan with 1,000 running Flink jobs cannot run on this machine
(4 task slots), and the Flink part of ``observe`` is one ``/jobs/overview`` request whatever the
number of products, so it does not grow with N.

Everything is removed at the end: connectors stopped, replication slots and databases dropped,
topics and subjects deleted.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg2
import requests
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AdminClient,
    ConfigResource,
    ResourceType,
)
from psycopg2.extensions import make_dsn

from bench import generated_mesh
from bench.generated_mesh import Domain, Mix
from datamesh import endpoints
from datamesh.cdc import running
from datamesh.control.apply import Options, apply
from datamesh.control.desired import desired
from datamesh.control.observe import observe
from datamesh.control.plan import plan
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct

TABLES_PER_DATABASE = 100
RUNS = 3


def log(message: str) -> None:
    """A progress line (the area takes minutes)."""
    print(f"  control_plane: {message}", flush=True)


def run(n: int, tag: str) -> dict[str, float]:
    """The figures of N generated CDC products (N under 100, or a multiple of 100: 100 tables
    per source database)."""
    per = min(n, TABLES_PER_DATABASE)
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        root = Path(tmp)
        domains = generated_mesh.write(root / "domains", f"cp{tag}n{n}d", n // per, Mix(per))
        products = load_products(root / "domains")
        control = root / "control"
        try:
            _create_databases(domains)
            return _figures(n, products, control)
        finally:
            _cleanup(domains, products)


def _figures(n: int, products: Sequence[DataProduct], control: Path) -> dict[str, float]:
    log(f"{n} products: first apply")
    first_s, report = _timed(lambda: apply(products, Options(), say=_quiet, control_root=control))
    if not report.ok:
        raise RuntimeError(
            f"the first apply of {n} products failed: {report.refusals[:3]} "
            f"{[o.note for o in report.outcomes if o.status == 'failed'][:3]}"
        )
    plans = []
    for _ in range(RUNS):
        plan_s, actions = _timed(lambda: plan(products, observe(products, control)))
        if actions:
            raise RuntimeError(f"a no-op plan of {n} products planned {actions[:3]}")
        plans.append(plan_s)
    apply_s, again = _timed(lambda: apply(products, Options(), say=_quiet, control_root=control))
    if again.outcomes or again.refusals:
        raise RuntimeError(f"a no-op apply of {n} products did {again.outcomes[:3]}")
    raw_s = _raw_reads(products)
    noop_plan_s = statistics.median(plans)
    log(f"{n} products: first apply {first_s:.1f}s, no-op plan {noop_plan_s:.2f}s")
    return {
        f"first_apply_{n}_s": round(first_s, 2),
        f"noop_plan_{n}_s": round(noop_plan_s, 3),
        f"noop_apply_{n}_s": round(apply_s, 3),
        f"raw_reads_{n}_s": round(raw_s, 3),
        f"ratio_vs_raw_reads_{n}": round(raw_s / noop_plan_s, 3),
    }


def _quiet(line: str) -> None:
    """``apply``'s progress lines: thousands of them on a first apply, not worth printing."""


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _raw_reads(products: Sequence[DataProduct]) -> float:
    """One list_topics, one batched describe_configs, and each subject's latest version and
    level read one after the other over one session: what observing these products reads."""
    by_id = {p.id: p for p in products}
    wanted = [desired(p, by_id) for p in products]
    topics = sorted({d.topic for d in wanted if d.topic})
    subjects = sorted({s.subject for d in wanted for s in d.subjects})
    admin = AdminClient(client_config(endpoints.endpoint("kafka")))
    url = endpoints.endpoint("schema_registry").rstrip("/")
    session = requests.Session()
    start = time.perf_counter()
    meta = admin.list_topics(timeout=30)
    present = [t for t in topics if t in meta.topics]
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in present])
    for future in futures.values():
        future.result()
    for subject in subjects:
        session.get(f"{url}/subjects/{subject}/versions/latest", timeout=15)
        session.get(f"{url}/config/{subject}", timeout=15)
    return time.perf_counter() - start


# -- the source databases and the clean-up -----------------------------------------------------


def _create_databases(domains: Sequence[Domain]) -> None:
    server = endpoints.endpoint("postgres")
    admin = psycopg2.connect(server)
    admin.autocommit = True
    try:
        for d in domains:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{d.database}"')
            with psycopg2.connect(make_dsn(server, dbname=d.database)) as db, db.cursor() as cur:
                cur.execute(generated_mesh.ddl(d))
            db.close()
    finally:
        admin.close()


def _cleanup(domains: Sequence[Domain], products: Sequence[DataProduct]) -> None:
    """Stop the connectors, drop slots and databases, delete topics and subjects (best effort:
    the bench stack is private, but later areas should not read 1,000 extra topics)."""
    by_id = {p.id: p for p in products}
    wanted = [desired(p, by_id) for p in products]
    for name in sorted({d.connector for d in wanted if d.connector}):
        running.stop(name)
    admin = psycopg2.connect(endpoints.endpoint("postgres"))
    admin.autocommit = True
    try:
        for d in domains:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s AND NOT active",
                    (d.database,),
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{d.database}" WITH (FORCE)')
    finally:
        admin.close()
    topics = sorted({d.topic for d in wanted if d.topic})
    kafka = AdminClient(client_config(endpoints.endpoint("kafka")))
    for future in kafka.delete_topics(topics, operation_timeout=60).values():
        with contextlib.suppress(KafkaException):
            future.result()
    registry = SchemaClient(endpoints.endpoint("schema_registry"))
    subjects = sorted({s.subject for d in wanted for s in d.subjects})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(registry.delete_subject, subjects))
