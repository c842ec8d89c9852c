"""Audits on the real stack: PostgreSQL → CDC connector → Kafka → sink (Iceberg, or PostgreSQL
through a Flink JDBC job), compared with the source table.

- Rows deleted from a sink table out of band: the audit fails naming the keys and owners;
  the repair re-captures exactly them (DBLog snapshot) and the audit passes again.
- A value modified in the sink: the audit names the row and the column; a row only in the
  sink is named as extra and the repair deletes it. The PostgreSQL sink is declared in a
  domains folder and audited through `mesh audit [--json] [--repair]` and through Dagster (the
  `audit` check and the repair job).
- Continuous writes (updates, inserts, deletes at ``RATE`` changes/s) during three audits: no
  false alarm; the differing chunks they met settle in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest

from datamesh import cli, endpoints, names
from datamesh.audit.key_filter import iceberg_filter
from datamesh.audit.repair import repair_differences
from datamesh.audit.target import run_audit, target_for
from datamesh.sinks.catalog import open_catalog
from datamesh.sinks.iceberg_sink import IcebergSink, sink_job
from datamesh.specs import load_products
from mesh_assets.audit import build_audit_checks, build_audit_jobs
from resources.flink import FlinkResource
from tests.integration.audit.conftest import (
    COLUMNS,
    MOVIES_DDL,
    movies_product,
    seed,
    sink_dsn,
    sink_product,
    write_domain,
)
from tests.integration.sinks.conftest import Source, await_caught_up

pytestmark = pytest.mark.integration
RATE = 1000  # changes/s the writer aims at during an audit


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.5)


def test_iceberg_sink_rows_deleted_out_of_band_are_named_then_recaptured(
    source: Callable[..., Source], sinks: Callable[..., IcebergSink]
) -> None:
    src = source(MOVIES_DDL, "movies")
    seed(src, 500)
    src.run("UPDATE movies SET title = 'updated ' || id WHERE id % 7 = 0")
    await_caught_up(src)
    movies = movies_product(src)
    sink = sink_product(movies, "iceberg_sink")
    by_id = {movies.id: movies, sink.id: sink}
    job = sink_job(sink, by_id)
    sinks().run(job)
    target = target_for(sink, by_id, endpoints.endpoint("postgres"))
    assert target.columns == tuple((c, c) for c in COLUMNS)

    clean = run_audit(target, chunk_rows=100)
    assert clean.passed, clean.text()
    assert clean.counts()["rows_sink"] == 500 and clean.counts()["chunks"] == 5

    table = open_catalog().load_table(target.iceberg_table)
    table.delete(iceberg_filter(["id"], [(13,), (250,), (499,)]))
    failed = run_audit(target, chunk_rows=100)
    assert not failed.passed
    assert failed.counts()["missing"] == 3 and failed.counts()["chunks_differing"] == 3
    assert failed.firsts()["missing"] == ["id=13", "id=250", "id=499"]
    assert "owners: team:audit-test" in failed.text()
    assert failed.seconds >= target.grace_s  # a real difference is confirmed after the grace

    repaired = repair_differences(target, failed, run_sink=lambda: sinks().run(job))
    assert repaired == {"keys re-captured": 3, "extra keys deleted": 0}
    again = run_audit(target, chunk_rows=100)
    assert again.passed, again.text()
    rows = (
        open_catalog()
        .load_table(target.iceberg_table)
        .scan(row_filter=iceberg_filter(["id"], [(13,), (250,)]))
        .to_arrow()
    )
    assert sorted(rows.column("title").to_pylist()) == ["movie 13", "movie 250"]


def test_postgres_sink_delete_modify_and_extra_rows(
    source: Callable[..., Source],
    sink_db: str,
    cancel_jobs: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = source(MOVIES_DDL, "movies")
    seed(src, 300)
    monkeypatch.setenv(endpoints.DOMAINS_DIR_VAR, str(write_domain(tmp_path, src, sink_db)))
    products = load_products(endpoints.domains_dir())
    by_id = {p.id: p for p in products}
    sink = by_id[f"{src.domain}.movies_serving"]
    cancel_jobs.append(names.flink_job(sink))
    status = FlinkResource().deploy_sink(sink, by_id)
    assert status.running, status
    target = target_for(sink, by_id, endpoints.endpoint("postgres"))
    db = psycopg2.connect(sink_dsn(sink_db))
    db.autocommit = True

    def sink_count() -> int:
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.movies")
            return int(cur.fetchone()[0])

    _wait(lambda: sink_count() == 300, 120, "the sink job to copy 300 rows")
    assert cli.main(["audit", sink.id]) == 0
    assert f"audit {sink.id}: PASSED" in capsys.readouterr().out

    with db.cursor() as cur:
        cur.execute("DELETE FROM public.movies WHERE id IN (5, 77)")
        cur.execute("UPDATE public.movies SET budget = 1.23 WHERE id = 100")
        cur.execute(
            "INSERT INTO public.movies (id, title, updated_at) VALUES (9000, 'ghost', now())"
        )
    failed = run_audit(target, chunk_rows=64)
    assert not failed.passed
    assert failed.firsts() == {
        "missing": ["id=5", "id=77"],
        "extra": ["id=9000"],
        "differing": [{"key": "id=100", "columns": ["budget"]}],
        "unsettled": [],
    }
    assert failed.metadata()["first_differing"] == "id=100 (budget)"

    assert cli.main(["audit", sink.id, "--json"]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert (document["passed"], document["missing"], document["extra"], document["differing"]) == (
        False,
        2,
        1,
        1,
    )
    assert document["first_missing"] == ["id=5", "id=77"]
    assert document["owners"] == ["team:audit-test"]
    assert "audit: source 1/1" in err  # progress on stderr

    assert cli.main(["audit", sink.id, "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"audit {sink.id}: PASSED" in out
    assert "repair: 3 keys re-captured" in out and "repair: 1 extra keys deleted" in out
    with db.cursor() as cur:
        cur.execute(
            "SELECT id, budget::text FROM public.movies WHERE id IN (5, 100, 9000) ORDER BY id"
        )
        assert cur.fetchall() == [(5, "52.50"), (100, "1050.00")]

    # the same through Dagster: the check, then the repair job the UI launches
    defs = dg.Definitions(
        assets=[dg.AssetSpec(dg.AssetKey([src.domain, "movies_serving"]))],
        asset_checks=build_audit_checks(products),
        jobs=build_audit_jobs(products),
    )
    with db.cursor() as cur:
        cur.execute("DELETE FROM public.movies WHERE id = 42")
    check_run = defs.resolve_job_def(f"{src.domain}__movies_serving__audit").execute_in_process()
    [evaluation] = check_run.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["first_missing"].value == "id=42"
    assert evaluation.metadata["missing"].value == 1
    assert "Owners: team:audit-test" in (evaluation.description or "")
    repair_run = defs.resolve_job_def(f"{src.domain}__movies_serving__audit_repair")
    assert repair_run.execute_in_process().success
    again = defs.resolve_job_def(f"{src.domain}__movies_serving__audit").execute_in_process()
    [evaluation] = again.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["rows_sink"].value == 300
    db.close()


class Writer(threading.Thread):
    """Changes the source continuously: every tick updates, inserts and deletes rows in one
    transaction, aiming at ``rate`` changes per second; ``changes`` counts what it committed."""

    def __init__(self, dsn: str, first_new_id: int, rate: int) -> None:
        super().__init__(daemon=True)
        self.db = psycopg2.connect(dsn)
        self.db.autocommit = True
        self.next_id, self.rate = first_new_id, rate
        self.changes, self.stop = 0, threading.Event()
        self.started_at = self.stopped_at = 0.0

    def run(self) -> None:
        tick = 0.05
        per_tick = max(int(self.rate * tick), 10)
        updates, inserts = per_tick - per_tick // 5, per_tick // 10
        deletes = per_tick - updates - inserts
        self.started_at = time.monotonic()
        with self.db.cursor() as cur:
            while not self.stop.is_set():
                began = time.monotonic()
                cur.execute(
                    "BEGIN; UPDATE movies SET title = md5(random()::text), updated_at = now() "
                    "WHERE id IN (SELECT id FROM movies ORDER BY random() LIMIT %s);"
                    "INSERT INTO movies (id, title, budget) SELECT g, 'new', 1.5 "
                    "FROM generate_series(%s, %s) g;"
                    "DELETE FROM movies WHERE id IN (SELECT id FROM movies ORDER BY random() "
                    "LIMIT %s); COMMIT",
                    (updates, self.next_id, self.next_id + inserts - 1, deletes),
                )
                self.next_id += inserts
                self.changes += per_tick
                time.sleep(max(0.0, tick - (time.monotonic() - began)))
        self.stopped_at = time.monotonic()
        self.db.close()

    @property
    def achieved(self) -> float:
        return self.changes / max(self.stopped_at - self.started_at, 1e-9)


def test_changes_in_flight_during_an_audit_are_no_false_alarm(
    source: Callable[..., Source], sink_db: str, cancel_jobs: list[str]
) -> None:
    src = source(MOVIES_DDL, "movies")
    seed(src, 5000)
    movies = movies_product(src)
    sink = sink_product(movies, "postgres_sink", database=sink_db, table="public.movies")
    by_id = {movies.id: movies, sink.id: sink}
    cancel_jobs.append(names.flink_job(sink))
    assert FlinkResource().deploy_sink(sink, by_id).running
    target = target_for(sink, by_id, endpoints.endpoint("postgres"))
    _wait(lambda: run_audit(target, chunk_rows=500).passed, 120, "the sink to copy the table")

    writer = Writer(src.dsn, 100_000, RATE)
    writer.start()
    try:
        time.sleep(3)  # the pipeline is loaded before the audit starts
        results = [run_audit(target, chunk_rows=500) for _ in range(3)]
    finally:
        writer.stop.set()
        writer.join()
    print(f"continuous writes: {writer.achieved:.0f} changes/s during the audits")
    for r in results:
        print(f"  audit {r.seconds:.1f}s {r.counts()}")
    assert writer.achieved >= RATE * 0.8, writer.achieved
    for result in results:
        assert result.passed, result.text()
    # the audits did meet changes in flight, and let them settle rather than fail
    assert sum(r.counts()["chunks_differing"] for r in results) > 0
    assert sum(r.counts()["settled_in_flight"] for r in results) > 0
