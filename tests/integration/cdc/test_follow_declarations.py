"""A running connector follows its declarations (real stack: PostgreSQL, Kafka, registry).

- table B declared while the connector streams table A under continuous writes to both:
  ``observe -> plan -> apply`` adds B to the publication and snapshots it (DBLog); B's topic
  ends row-for-row equal to PostgreSQL (pre-existing rows and concurrent writes), and A's
  stream has no gap;
- B removed: it leaves the publication, new writes to B never reach its topic (not even when a
  snapshot of B is requested), A continues;
- materializing a newly declared CDC product (the Dagster asset) runs the same code, and B's
  snapshot waits for a transaction left open across the ALTER (pgoutput skips its change);
- a slot dropped out of band is drift: applied only with repair, it re-snapshots every table;
  a stopped connector's ``create`` adds a newly declared table to its publication first;
- parallel materializations of one database's products start it once and restart it once.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pytest

from datamesh.cdc import cli as cdc_cli
from datamesh.cdc import running
from datamesh.cdc.catalog import parse_lsn
from datamesh.cdc.config import ConnectorConfig
from datamesh.control import connectors
from datamesh.control.connector_apply import apply_connector
from datamesh.control.connectors import ConnectorSpec
from datamesh.errors import TerminalError
from datamesh.specs.product import CdcSource, DataProduct, Slo, TopicSettings
from mesh_assets import build_assets
from resources import resources_for
from resources.cdc import CdcResource
from tests.integration.cdc.conftest import DOMAIN, SourceDb, TopicReader, latest_per_key, wait_for

pytestmark = pytest.mark.integration

B_ROWS = 20_000
RESERVED = 10  # B's ids 1..10 are only written by the test itself, never by the writer
HOLD_S = 8.0  # a transaction on B open across the ALTER: longer than a connector restart
T = TypeVar("T")


@pytest.fixture
def platform(endpoints: dict[str, str], source_db: SourceDb) -> Iterator[Any]:
    """Factory: (spec, config) the platform derives for ``tables`` of ``source_db`` (quick
    heartbeats and status, small snapshot chunks); the connector is stopped at teardown."""
    names: set[str] = set()

    def make(*tables: str) -> tuple[ConnectorSpec, ConnectorConfig]:
        spec = ConnectorSpec(DOMAIN, source_db.name, tuple(sorted(tables)))
        cfg = connectors.config(
            spec, endpoints["postgres"], endpoints["kafka"], endpoints["schema_registry"]
        )
        names.add(cfg.name)
        return spec, dataclasses.replace(
            cfg, heartbeat_s=0.5, status_interval_s=0.2, chunk_size=1000, snapshot_pause_s=0.05
        )

    yield make
    for name in names:
        running.stop(name)


def _plan_and_apply(spec: ConnectorSpec, cfg: ConnectorConfig, dsn: str) -> list[str]:
    """What ``mesh apply`` does for one connector; the verbs it applied."""
    observed = connectors.observe_connector(spec, dsn)
    actions = connectors.plan_connector(spec, observed, lambda t: f"{DOMAIN}.{t[7:]}")
    for action in actions:
        apply_connector(action, cfg)
    return [a.verb for a in actions]


@pytest.fixture
def ab(source_db: SourceDb) -> tuple[str, str]:
    """Tables A (empty) and B (``B_ROWS`` rows), uniquely named: CDC topics are
    ``<domain>.<schema>.<table>`` whatever the database, so names must not repeat across tests."""
    suffix = uuid.uuid4().hex[:8]
    a, b = f"public.a_{suffix}", f"public.b_{suffix}"
    for table in (a, b):
        source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, val text, n int)")
    source_db.sql(
        f"INSERT INTO {b} SELECT g, md5(g::text), 0 FROM generate_series(1, %s) g", (B_ROWS,)
    )
    source_db.sql(f"ANALYZE {b}")
    return a, b


class Writers:
    """Continuous small transactions: inserts (and updates) on A from id ``a_from``, mixed
    updates, inserts (from id ``b_from``) and deletes on B."""

    def __init__(self, db: SourceDb, a: str, b: str, a_from: int = 1, b_from: int = B_ROWS) -> None:
        self.db, self.a, self.b = db, a, b
        self.a_from, self.b_from = a_from, b_from
        self.stop = threading.Event()
        self.a_ids: list[int] = []
        self.b_writes = 0
        self.threads = [
            threading.Thread(target=self._on_a, daemon=True),
            threading.Thread(target=self._on_b, daemon=True),
        ]

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _on_a(self) -> None:
        conn = self.db.connect()
        with conn.cursor() as cur:
            i = self.a_from - 1
            while not self.stop.is_set():
                i += 1
                cur.execute(f"INSERT INTO {self.a} VALUES (%s, 'v', 0)", (i,))
                if i % 5 == 0:
                    cur.execute(f"UPDATE {self.a} SET n = n + 1 WHERE id = %s", (i - 3,))
                conn.commit()
                self.a_ids.append(i)
                time.sleep(0.003)
        conn.close()

    def _on_b(self) -> None:
        rng = random.Random(11)
        conn = self.db.connect()
        next_id = self.b_from
        with conn.cursor() as cur:
            while not self.stop.is_set():
                for _ in range(rng.randint(1, 3)):  # 1-3 changes per transaction
                    roll, key = rng.random(), rng.randint(RESERVED + 1, next_id)
                    if roll < 0.6:
                        cur.execute(
                            f"UPDATE {self.b} SET n = n + 1, val = %s WHERE id = %s",
                            (uuid.uuid4().hex, key),
                        )
                    elif roll < 0.85:
                        next_id += 1
                        cur.execute(f"INSERT INTO {self.b} VALUES (%s, 'new', 0)", (next_id,))
                    else:
                        cur.execute(f"DELETE FROM {self.b} WHERE id = %s", (key,))
                conn.commit()
                self.b_writes += 1
                time.sleep(0.003)
        conn.close()


def _rows(db: SourceDb, table: str) -> dict[int, dict[str, Any]]:
    return {i: {"id": i, "val": v, "n": n} for i, v, n in db.sql(f"SELECT id, val, n FROM {table}")}


def _caught_up(db: SourceDb, name: str, timeout_s: float = 120) -> None:
    target = db.wal_lsn()
    wait_for(
        lambda: parse_lsn((running.status(name) or {}).get("confirmed_lsn")) >= target,
        timeout_s,
        f"connector {name} to confirm LSN >= {target}",
        running.workdir(name) / "connector.log",
    )


def _in_publication(db: SourceDb, publication: str) -> set[str]:
    rows = db.sql(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
        (publication,),
    )
    return {r[0] for r in rows} - {"mesh_cdc.watermarks"}


def _across_open_transaction(
    db: SourceDb, b: str, name: str, apply: Callable[[], T]
) -> tuple[T, float]:
    """``apply()`` while a transaction that changed row 1 of B is open: its change precedes the
    ALTER in the log, so pgoutput does not stream it. The transaction ends after ``HOLD_S``
    seconds, or — when ``apply`` returned before (it did not wait for it) — once B's snapshot
    read its first chunk without it. ``apply``'s result and when it returned (from the start)."""
    straddler = db.connect()
    with straddler.cursor() as cur:
        cur.execute(f"UPDATE {b} SET val = 'straddled the ALTER', n = -7 WHERE id = 1")
    start = time.monotonic()

    def timed() -> tuple[T, float]:
        result = apply()
        return result, time.monotonic() - start

    with ThreadPoolExecutor(1) as pool:
        applied = pool.submit(timed)
        wait([applied], timeout=HOLD_S)
        if applied.done():
            _snapshot_started(name, b)
        straddler.commit()
        straddler.close()
        return applied.result(timeout=180)


def _snapshot_started(name: str, table: str) -> None:
    def started() -> bool:
        snapshot = (running.status(name) or {}).get("snapshot", {})
        return int((snapshot.get(table) or {}).get("rows_done") or 0) > 0

    wait_for(started, 60, f"the snapshot of {table} to start")


def _snapshot_done(name: str, table: str, timeout_s: float) -> None:
    def done() -> bool:
        snapshot = (running.status(name) or {}).get("snapshot", {})
        return bool((snapshot.get(table) or {}).get("status") == "done")

    wait_for(done, timeout_s, f"the snapshot of {table}", running.workdir(name) / "connector.log")


def test_a_table_added_then_removed_while_the_connector_streams(
    source_db: SourceDb,
    ab: tuple[str, str],
    platform: Callable[..., Any],
    reader: TopicReader,
    endpoints: dict[str, str],
) -> None:
    dsn, (a, b) = endpoints["postgres"], ab
    spec_a, cfg = platform(a)
    spec_ab, cfg_ab = platform(a, b)
    assert connectors.observe_connector(spec_a, dsn) is None
    assert _plan_and_apply(spec_a, cfg, dsn) == ["create"]
    first_pid = running.pid_of(cfg.name)

    with Writers(source_db, a, b) as writers:
        wait_for(lambda: len(writers.a_ids) > 200, 60, "writes on A")
        start = time.monotonic()
        assert _plan_and_apply(spec_ab, cfg_ab, dsn) == ["update"]
        print(f"add B under writes: applied in {time.monotonic() - start:.1f}s")
        assert running.pid_of(cfg.name) not in (None, first_pid)  # restarted, capturing B
        assert running.captured(cfg.name) == (a, b)
        assert _in_publication(source_db, spec_ab.slot) == {a, b}
        writes_before, start = writers.b_writes, time.monotonic()
        _snapshot_done(cfg.name, b, 240)
        during = writers.b_writes - writes_before
        print(f"snapshot of {B_ROWS} rows: {time.monotonic() - start:.1f}s, {during} write tx")
        assert during > 50  # B was written to all along its snapshot
        time.sleep(1.0)
    assert _plan_and_apply(spec_ab, cfg_ab, dsn) == ["in_sync"]
    _caught_up(source_db, cfg.name)

    b_events = reader.read(f"{DOMAIN}.{b}", timeout_s=120)
    b_topic, b_table = latest_per_key(b_events), _rows(source_db, b)
    assert b_topic == b_table, _difference(b_topic, b_table)
    assert max(b_table) > B_ROWS  # rows inserted during the change are there too
    assert sum(1 for _, v in b_events if v is not None and v["op"] == "r") >= len(b_table) // 2
    a_events = reader.read(f"{DOMAIN}.{a}", timeout_s=120)
    a_seen = {v["after"]["id"] for _, v in a_events if v is not None and v["after"]}
    missing = set(writers.a_ids) - a_seen
    assert not missing, f"A lost {len(missing)} of {len(writers.a_ids)}: {sorted(missing)[:9]}"
    assert latest_per_key(a_events) == _rows(source_db, a)

    # B removed: out of the publication, nothing more of it on its topic, A continues
    assert _plan_and_apply(spec_a, cfg, dsn) == ["update"]
    assert _in_publication(source_db, spec_a.slot) == {a}
    assert running.captured(cfg.name) == (a,)
    b_end = len(reader.read(f"{DOMAIN}.{b}", timeout_s=120))
    args = ["--dsn", dsn, "--database", source_db.name, "--domain", DOMAIN, "--table", b]
    assert cdc_cli.main(["snapshot", *args]) == 0  # what `mesh snapshot` of B records
    pid = running.pid_of(cfg.name)
    with Writers(source_db, a, b, a_from=max(writers.a_ids) + 1, b_from=500_000) as more:
        time.sleep(5.0)  # past the snapshot runner's request poll (2 s), many writes to B
    assert len(more.a_ids) > 100 and more.b_writes > 100
    _caught_up(source_db, cfg.name)
    assert running.pid_of(cfg.name) == pid  # the request for B did not disturb it
    assert len(reader.read(f"{DOMAIN}.{b}", timeout_s=120)) == b_end
    assert latest_per_key(reader.read(f"{DOMAIN}.{a}", timeout_s=120)) == _rows(source_db, a)
    assert _plan_and_apply(spec_a, cfg, dsn) == ["in_sync"]


def _difference(topic: dict[Any, Any], table: dict[Any, Any]) -> str:
    only_topic = sorted(set(topic) - set(table))[:5]
    only_table = sorted(set(table) - set(topic))[:5]
    differ = [k for k in table if k in topic and topic[k] != table[k]][:5]
    return (
        f"keys only on the topic {only_topic}, only in PostgreSQL {only_table}, "
        f"different {[(topic[k], table[k]) for k in differ]}"
    )


VALUE = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "val", "type": ["null", "string"], "default": None},
        {"name": "n", "type": ["null", "int"], "default": None},
    ],
}


def _product(db: SourceDb, table: str) -> DataProduct:
    name = table.split(".")[1]
    return DataProduct(
        domain=DOMAIN,
        name=name,
        kind="cdc",
        description=f"table {table}",
        owners=("team:test",),
        access="internal",
        tier=2,
        slo=Slo(),
        key=("id",),
        inputs=(),
        value_schema=VALUE,
        topic=TopicSettings(1, 1, -1, "compact"),
        compatibility="BACKWARD",
        declared_in=Path(f"/tmp/{DOMAIN}/products.yaml"),
        source=CdcSource(db.name, "public", name),
    )


def _materialize(products: list[DataProduct], product: DataProduct) -> dict[str, Any]:
    assets = {a.key: a for a in build_assets(products) if isinstance(a, dg.AssetsDefinition)}
    key = dg.AssetKey([product.domain, product.name])
    result = dg.materialize([assets[key]], resources=resources_for())
    assert result.success
    [event] = result.asset_materializations_for_node(assets[key].node_def.name)
    return {k: v.value for k, v in event.metadata.items()}


def test_materializing_a_newly_declared_cdc_product_captures_it(
    source_db: SourceDb, ab: tuple[str, str], reader: TopicReader
) -> None:
    a, b = ab
    product_a, product_b = _product(source_db, a), _product(source_db, b)
    name = connectors.spec_for(product_a, [product_a]).name
    try:
        _materialize([product_a], product_a)
        assert running.captured(name) == (a,)
        source_db.sql(f"INSERT INTO {a} VALUES (1, 'a', 0)")
        declared = [product_a, product_b]  # B declared, then materialized
        meta, took = _across_open_transaction(
            source_db, b, name, lambda: _materialize(declared, product_b)
        )
        print(f"materialized B in {took:.1f}s (a transaction held it {HOLD_S:.0f}s)")
        assert took >= HOLD_S  # its snapshot waited for the transaction open at the ALTER
        assert running.captured(name) == (a, b)
        assert meta["connector_state"] == "streaming", meta
        source_db.sql(f"UPDATE {b} SET val = 'streamed' WHERE id = 2")
        _snapshot_done(name, b, 120)
        _caught_up(source_db, name)
        b_topic, b_table = latest_per_key(reader.read(f"{DOMAIN}.{b}")), _rows(source_db, b)
        assert b_table[1]["val"] == "straddled the ALTER"
        assert b_topic == b_table, _difference(b_topic, b_table)
        assert latest_per_key(reader.read(f"{DOMAIN}.{a}")) == _rows(source_db, a)
    finally:
        running.stop(name)


def test_a_slot_dropped_out_of_band_is_drift_repaired_only_on_request(
    source_db: SourceDb,
    ab: tuple[str, str],
    platform: Callable[..., Any],
    reader: TopicReader,
    endpoints: dict[str, str],
) -> None:
    dsn, (a, b) = endpoints["postgres"], ab
    spec, cfg = platform(b)
    assert _plan_and_apply(spec, cfg, dsn) == ["create"]
    _snapshot_done(cfg.name, b, 120)
    running.stop(cfg.name)
    source_db.sql("SELECT pg_drop_replication_slot(%s)", (spec.slot,))
    source_db.sql(f"UPDATE {b} SET val = 'while the slot was gone' WHERE id <= 100")

    (drift,) = connectors.plan_connector(spec, connectors.observe_connector(spec, dsn), lambda t: t)
    assert (drift.verb, drift.gate, drift.params["repair"]) == ("drift", "repair", "resnapshot")
    assert "changes made since were not captured" in drift.detail
    with pytest.raises(TerminalError, match="was dropped out of band"):
        apply_connector(drift, cfg)  # not without --repair: nothing changes
    assert running.pid_of(cfg.name) is None
    assert (
        source_db.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (spec.slot,)) == []
    )

    apply_connector(drift, cfg, repair=True)
    _snapshot_done(cfg.name, b, 120)
    _caught_up(source_db, cfg.name)
    b_topic, b_table = latest_per_key(reader.read(f"{DOMAIN}.{b}")), _rows(source_db, b)
    assert b_table[100]["val"] == "while the slot was gone"
    assert b_topic == b_table, _difference(b_topic, b_table)
    assert _plan_and_apply(spec, cfg, dsn) == ["in_sync"]

    # stopped, then A declared: a bare `create` (what a planner that knows only "not
    # running" asks for) brings its publication in line before starting it
    running.stop(cfg.name)
    source_db.sql(f"INSERT INTO {a} SELECT g, 'before', 0 FROM generate_series(1, 50) g")
    spec_ab, cfg_ab = platform(a, b)
    (create,) = connectors.plan_connector(spec_ab, None, lambda t: t)
    apply_connector(create, cfg_ab)
    assert _in_publication(source_db, spec.slot) == {a, b}
    watermarks = "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND tablename = %s"
    assert source_db.sql(watermarks, (spec.slot, "watermarks")) == [(1,)]
    _snapshot_done(cfg.name, a, 60)
    _caught_up(source_db, cfg.name)
    assert latest_per_key(reader.read(f"{DOMAIN}.{a}")) == _rows(source_db, a)
    assert _plan_and_apply(spec_ab, cfg_ab, dsn) == ["in_sync"]


def test_parallel_materializations_converge_with_one_start_and_one_restart(
    source_db: SourceDb, reader: TopicReader
) -> None:
    suffix = uuid.uuid4().hex[:8]
    tables = [f"public.p{i}_{suffix}" for i in range(6)]
    for table in tables:
        source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, val text, n int)")
        source_db.sql(f"INSERT INTO {table} SELECT g, 'v', 0 FROM generate_series(1, 100) g")
    products = [_product(source_db, t) for t in tables]
    cdc = CdcResource()
    name = connectors.spec_for(products[0], products).name
    log = running.workdir(name) / "connector.log"
    try:
        first = products[:4]
        with ThreadPoolExecutor(4) as pool:  # four assets of one database materialized at once
            pids = {s["pid"] for s in pool.map(lambda p: cdc.ensure(p, first), first)}
        assert len(pids) == 1 and running.captured(name) == tuple(sorted(tables[:4]))
        with ThreadPoolExecutor(6) as pool:  # two more declared, all six materialized at once
            again = {s["pid"] for s in pool.map(lambda p: cdc.ensure(p, products), products)}
        assert len(again) == 1 and again != pids
        assert running.captured(name) == tuple(sorted(tables))
        assert log.read_text().count("streaming slot") == 2  # one start, one restart
        for table in tables[4:]:
            _snapshot_done(name, table, 60)
        for table in tables:
            assert latest_per_key(reader.read(f"{DOMAIN}.{table}")) == _rows(source_db, table)
    finally:
        running.stop(name)
