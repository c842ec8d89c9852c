"""SLO checks on the real stack: each fails for the reason it names, its result names the
owners and the measured value, and it passes again once the cause is gone.

The checks are evaluated the way ``mesh dev`` evaluates them — a tick of the ``mesh_slo_sensor``
whose evaluations are stored in the instance — against products declared in YAML with short
objectives (freshness 5 s, max lag 20 messages), a CDC source started by the platform and a Flink
processor reading it.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from datamesh import endpoints, names
from datamesh.cdc import running
from datamesh.checks import evaluate as evaluate_module
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from mesh_assets import build_assets
from resources import resources_for
from resources.flink import FlinkResource
from resources.kafka import KafkaResource
from sensors.slo_sensor import build_slo_sensor
from tests.integration.sinks.conftest import Source

pytestmark = pytest.mark.integration

OWNER = "team:checks-test"
DDL = (
    "CREATE TABLE items (id bigint PRIMARY KEY, name text); ALTER TABLE items REPLICA IDENTITY FULL"
)
ITEM = {"type": "record", "name": "Item", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": None},
]}  # fmt: skip
Evaluations = dict[tuple[str, str], dg.AssetCheckEvaluation]
POISON = b"deliberately not Confluent-framed Avro"  # first byte 'd', not the magic byte 0


@dataclass
class Mesh:
    """Declared test products, their source database and a Dagster instance."""

    src: Source
    products: tuple[DataProduct, ...]
    instance: dg.DagsterInstance

    def product(self, name: str) -> DataProduct:
        return next(p for p in self.products if p.name == name)

    def materialize(self, *product_names: str) -> None:
        keys = {dg.AssetKey([self.src.domain, n]) for n in product_names}
        assets = [
            a
            for a in build_assets(self.products)
            if isinstance(a, dg.AssetsDefinition) and a.key in keys
        ]
        result = dg.materialize(assets, resources=resources_for(), instance=self.instance)
        assert result.success

    def evaluate(self) -> Evaluations:
        """One tick of the SLO sensor; its evaluations stored as the daemon stores them."""
        [sensor] = build_slo_sensor(self.products)
        context = dg.build_sensor_context(instance=self.instance, resources=resources_for())
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        evaluations = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert len(evaluations) == len(result.asset_events)  # the sensor reports only checks
        return {(e.asset_key.path[-1], e.check_name): e for e in evaluations}

    def insert(self, first: int, count: int) -> None:
        self.src.run(
            f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series({first}, "
            f"{first + count - 1}) g"
        )


def _declare(folder: Path, src: Source) -> None:
    folder.mkdir(parents=True)
    (folder / "items.avsc").write_text(json.dumps(ITEM))
    (folder / "copy.avsc").write_text(json.dumps({**ITEM, "name": "ItemCopy"}))
    (folder / "copy.sql").write_text(f"SELECT id, name FROM `{src.domain}.items`\n")
    slo = {"freshness": "5s", "max_lag": 20}
    declaration = {
        "domain": src.domain,
        "owners": [OWNER],
        "products": [
            {"name": "items", "kind": "cdc", "description": "test items", "tier": 1,
             "source": {"database": src.database, "table": "public.items"},
             "schema": "items.avsc", "key": ["id"], "slo": slo},
            {"name": "copy", "kind": "processor", "description": "a copy of the items",
             "tier": 1, "inputs": [f"{src.domain}.items"], "sql": "copy.sql",
             "schema": "copy.avsc", "key": ["id"], "topic": {"cleanup_policy": "compact"},
             "slo": slo},
        ],
    }  # fmt: skip
    (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))


@pytest.fixture
def mesh(source: Callable[..., Source], tmp_path: Path) -> Iterator[Mesh]:
    src = source(DDL, capture=False)
    folder = tmp_path / "domains" / src.domain
    _declare(folder, src)
    with dg.DagsterInstance.ephemeral() as instance:
        m = Mesh(src, load_products(folder.parent), instance)
        m.materialize("items")  # the platform starts the connector
        yield m
        FlinkResource().jobs().cancel(names.flink_job(m.product("copy")))
        running.stop(names.connector(src.domain, src.database))


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _failed(e: dg.AssetCheckEvaluation, *words: str) -> None:
    """A failed result that names the owners, the measured value and the given words."""
    text = f"{e.description} {e.metadata}"
    assert not e.passed, text
    assert OWNER in (e.description or ""), text
    assert "owners" in e.metadata and OWNER in str(e.metadata["owners"].value), text
    assert any(k.startswith("measured") for k in e.metadata), text
    for word in words:
        assert word in text, f"{word!r} not in {text}"


def _state(mesh: Mesh, name: str, check: str) -> str:
    return str(mesh.evaluate()[(name, check)].metadata["state"].value)


def test_freshness_tells_an_idle_source_from_a_stuck_connector(mesh: Mesh) -> None:
    rows = iter(range(1, 1000))

    def fresh_after_insert() -> bool:
        mesh.insert(next(rows), 1)
        time.sleep(1)
        return _state(mesh, "items", "freshness") == "fresh"

    _wait(fresh_after_insert, 60, "a new row to be fresh")
    time.sleep(6)  # past the 5 s objective, nothing written: idle, healthy (heartbeats)
    idle = mesh.evaluate()[("items", "freshness")]
    assert idle.passed and idle.metadata["state"].value == "idle", idle.description
    connector = names.connector(mesh.src.domain, mesh.src.database)
    pid = running.pid_of(connector)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the connector hangs: no status, no progress
    try:
        mesh.insert(100, 1)
        time.sleep(evaluate_module.STATUS_STALE_S + 1)
        stuck = mesh.evaluate()[("items", "freshness")]
        _failed(stuck, "stuck", f"connector {connector}", "has not reported")
        assert stuck.metadata["likely_hop"].value == f"connector {connector}"
        assert stuck.severity == dg.AssetCheckSeverity.ERROR  # tier 1
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait(lambda: mesh.evaluate()[("items", "freshness")].passed, 60, "freshness to recover")


def test_lag_dead_letters_and_schema_fail_for_their_reason_and_recover(mesh: Mesh) -> None:
    before = mesh.evaluate()  # copy is declared but never started: nothing of it is judged
    assert ("items", "freshness") in before and not [k for k in before if k[0] == "copy"]
    mesh.materialize("copy")  # the Flink job reading items
    mesh.insert(1, 5)
    _wait(lambda: _state(mesh, "copy", "freshness") == "fresh", 120, "the job's first output")
    copy = mesh.product("copy")
    job = names.flink_job(copy)

    # lag: the job stops while the source keeps writing
    FlinkResource().jobs().cancel(job)
    mesh.insert(100, 50)
    _wait(lambda: not mesh.evaluate()[("items", "lag")].passed, 60, "lag over 20")
    lag = mesh.evaluate()[("items", "lag")]
    _failed(lag, job, "messages behind")
    assert _int(lag, "measured_messages") >= 50
    assert lag.metadata["objective_messages"].value == 20
    _wait(lambda: not mesh.evaluate()[("copy", "freshness")].passed, 30, "copy to go stale")
    _failed(mesh.evaluate()[("copy", "freshness")], "stuck", f"flink job {job}", "not running")
    mesh.materialize("copy")  # restarts from the committed offsets
    _wait(lambda: mesh.evaluate()[("items", "lag")].passed, 90, "lag back under 20")

    # dead letters: on purpose, the one record of this test that is not Confluent-framed Avro
    # (a poison message) reaches the job through the product topic
    items_topic = names.topic(mesh.product("items"))
    producer = Producer(KafkaResource().client_config())
    producer.produce(items_topic, key=b"\x00", value=POISON)
    assert producer.flush(10) == 0
    seen: list[dg.AssetCheckEvaluation] = []
    _wait(lambda: not _keep(seen, mesh.evaluate()[("copy", "dead_letters")]).passed, 60,
          "a dead letter")  # fmt: skip
    dlq = names.dlq_topic(names.topic(copy))
    _failed(seen[-1], "1 new dead letters", dlq)
    assert seen[-1].metadata["measured_messages"].value == 1
    [dead] = _read_all(dlq)  # the poison itself, unchanged, with why and where it came from
    headers = _headers(dead)
    assert dead.value() == POISON
    assert headers["mesh.source.topic"] == items_topic.encode()
    assert headers["mesh.schema.id"] == b"-1"
    assert b"not the Confluent magic byte 0" in headers["mesh.error"]
    assert mesh.evaluate()[("copy", "dead_letters")].passed  # nothing new since then

    # schema: registered out of band, bypassing the declared level
    subject = names.value_subject(names.topic(copy))
    url = endpoints.endpoint("schema_registry")
    auth = _registry_auth()
    requests.put(f"{url}/config/{subject}", json={"compatibility": "NONE"}, auth=auth, timeout=10)
    retyped = {**ITEM, "name": "ItemCopy", "fields": [{"name": "id", "type": "string"}]}
    reg = requests.post(f"{url}/subjects/{subject}/versions", auth=auth, timeout=10,
                        json={"schema": json.dumps(retyped)})  # fmt: skip
    assert reg.ok, reg.text
    schema = mesh.evaluate()[("copy", "schema")]
    _failed_schema(schema, "NONE", "BACKWARD")
    version = requests.get(f"{url}/subjects/{subject}/versions/latest", auth=auth, timeout=10)
    requests.delete(f"{url}/subjects/{subject}/versions/{version.json()['version']}", auth=auth,
                    timeout=10)  # fmt: skip
    requests.put(f"{url}/config/{subject}", json={"compatibility": "BACKWARD"}, auth=auth,
                 timeout=10)  # fmt: skip
    assert mesh.evaluate()[("copy", "schema")].passed


def _int(e: dg.AssetCheckEvaluation, key: str) -> int:
    value = e.metadata[key].value
    assert isinstance(value, int), (key, value)
    return value


def _read_all(topic: str, quiet_s: float = 3.0) -> list[Message]:
    """Every message of ``topic`` from the beginning (until it stays quiet for ``quiet_s``)."""
    group = f"t-{uuid.uuid4().hex}"
    consumer = Consumer({**KafkaResource().client_config(), "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[Message] = []
        while batch := consumer.consume(100, timeout=quiet_s):
            out += [m for m in batch if m.error() is None]
        return out
    finally:
        consumer.close()


def _headers(msg: Message) -> dict[str, bytes]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v for k, v in pairs if isinstance(v, bytes)}


def _keep(
    seen: list[dg.AssetCheckEvaluation], e: dg.AssetCheckEvaluation
) -> dg.AssetCheckEvaluation:
    seen.append(e)
    return e


def _failed_schema(e: dg.AssetCheckEvaluation, *words: str) -> None:
    text = f"{e.description}"
    assert not e.passed and OWNER in text, text
    for word in words:
        assert word in text, f"{word!r} not in {text}"


def _registry_auth() -> tuple[str, str] | None:
    info = os.environ.get(endpoints.REGISTRY_USER_INFO_VAR)
    if not info:
        return None
    user, _, password = info.partition(":")
    return user, password


def test_an_unreachable_system_is_could_not_evaluate(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_SCHEMA_REGISTRY_URL", f"http://127.0.0.1:1/{uuid.uuid4().hex}")
    schema = mesh.evaluate()[("items", "schema")]
    assert not schema.passed
    assert schema.metadata["state"].value == "could not evaluate", schema.description
    assert "registry" in (schema.description or "")
