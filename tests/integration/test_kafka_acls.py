"""Kafka ACLs on a real broker with KRaft's StandardAuthorizer: the grants are real.

This module starts its own one-broker stack (the session's broker has no authorizer, and
enforcing ACLs there would deny the other tests' SASL clients nothing but cost them a config):
``MESH_KAFKA_EMBEDDED_AUTHORIZER=1`` with the SASL listener, the platform's user a super user and
one more SASL user, the principal of a declared processor. A client authenticating as that
processor consumes its input with its group and is refused another topic and another group;
ACLs removed or added out of band show up in the plan as missing and as drift.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from datamesh import names
from datamesh.control.acls import (
    Grant,
    apply_acl,
    desired_acls,
    observe_acls,
    plan_acls,
    platform_principals,
    to_binding,
    to_filter,
)
from datamesh.endpoints import ENV_VARS
from datamesh.kafka_config import SECURITY_ENV
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from datamesh.stack import stack
from datamesh.stack.kafka import EMBEDDED_AUTHORIZER_ENV, EMBEDDED_SASL_ENV, EMBEDDED_SASL_USERS_ENV
from datamesh.stack.paths import PROJECT_ROOT
from tests.integration.conftest import up_or_down

pytestmark = pytest.mark.integration

PROCESSOR = "shop.big_orders"
ORDER = {"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "long"}, {"name": "amount", "type": "long"}]}  # fmt: skip


@dataclass(frozen=True)
class Broker:
    """The module's broker: its PLAINTEXT and SASL bootstraps and the users' passwords."""

    plaintext: str
    sasl: str
    passwords: dict[str, str]

    def config(self, user: str) -> dict[str, Any]:
        """Client settings of ``user`` on the SASL listener."""
        return {
            "bootstrap.servers": self.sasl,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": user,
            "sasl.password": self.passwords[user],
        }


def _private_broker(mp: pytest.MonkeyPatch, home: Path) -> None:
    """Point ``mesh up`` at ``home`` with every component but Kafka external (never started)."""
    mp.setenv("MESH_HOME", str(home))
    for name, var in ENV_VARS.items():
        if name == "kafka":
            mp.delenv(var, raising=False)
        else:
            mp.setenv(var, f"http://127.0.0.1:9/not-started-by-{home.name}")
    for var in ("security.protocol", "sasl.mechanism"):
        mp.delenv(SECURITY_ENV[var], raising=False)


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[Broker]:
    parent = PROJECT_ROOT / ".mesh" / "test-homes"
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="acl-broker-", dir=parent))
    passwords = {"mesh-platform": token_urlsafe(18), PROCESSOR: token_urlsafe(18)}
    with pytest.MonkeyPatch.context() as mp:
        _private_broker(mp, home)
        mp.setenv(EMBEDDED_SASL_ENV, "1")
        mp.setenv(EMBEDDED_AUTHORIZER_ENV, "1")
        mp.setenv(SECURITY_ENV["sasl.username"], "mesh-platform")
        mp.setenv(SECURITY_ENV["sasl.password"], passwords["mesh-platform"])
        mp.setenv(EMBEDDED_SASL_USERS_ENV, f"{PROCESSOR}:{passwords[PROCESSOR]}")
        kafka = up_or_down(progress=lambda line: print(f"[acl-broker] {line}"))["kafka"]
        try:
            yield Broker(kafka.endpoint, kafka.extra["sasl_bootstrap"], passwords)
        finally:
            leftovers = stack.down(progress=lambda line: print(f"[acl-broker] {line}"))
            shutil.rmtree(home, ignore_errors=True)
            assert not leftovers, leftovers


def _declare(root: Path) -> tuple[DataProduct, ...]:
    """Domain ``shop``: CDC ``orders`` and ``refunds``, processor ``big_orders`` reading orders;
    domain ``billing``: an Iceberg sink of ``shop.orders`` (public)."""
    shop, billing = root / "shop", root / "billing"
    shop.mkdir(parents=True)
    billing.mkdir()
    (shop / "order.avsc").write_text(json.dumps(ORDER))
    (shop / "big.sql").write_text("SELECT id, amount FROM `shop.orders` WHERE amount > 100\n")

    def cdc(name: str) -> dict[str, Any]:
        return {"name": name, "kind": "cdc", "description": name, "access": "public",
                "source": {"database": "shop", "table": f"public.{name}"},
                "schema": "order.avsc", "key": ["id"]}  # fmt: skip

    shop_products = [
        cdc("orders"),
        cdc("refunds"),
        {"name": "big_orders", "kind": "processor", "description": "orders over 100",
         "inputs": ["shop.orders"], "sql": "big.sql", "schema": "order.avsc", "key": ["id"]},
    ]  # fmt: skip
    for folder, products in (
        (shop, shop_products),
        (billing, [{"name": "orders_archive", "kind": "iceberg_sink",
                    "description": "orders kept", "inputs": ["shop.orders"]}]),
    ):  # fmt: skip
        declaration = {"domain": folder.name, "owners": ["team:test"], "products": products}
        (folder / "products.yaml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    return load_products(root)


def _consume(config: dict[str, Any], topic: str, group: str) -> tuple[list[bytes], set[int]]:
    """Subscribe as ``config``'s user in ``group``; the first message's value (committed), or the
    error codes the broker answered with. Gives up after 30 s with neither."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})  # fmt: skip
    values: list[bytes] = []
    errors: set[int] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not (values or errors) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                errors.add(error.code())
                continue
            values.append(msg.value() or b"")
            consumer.commit(message=msg, asynchronous=False)  # needs READ on the group
    finally:
        consumer.close()
    return values, errors


def _plan(broker: Broker, products: tuple[DataProduct, ...]) -> list[tuple[str, str]]:
    observed = observe_acls(broker.config("mesh-platform"))
    actions = plan_acls(desired_acls(products), observed, platform_principals(products))
    return [(a.verb, a.name) for a in actions]


def test_grants_are_real_and_drift_is_planned(acl_broker: Broker, tmp_path: Path) -> None:
    products = _declare(tmp_path / "domains")
    by_id = {p.id: p for p in products}
    topic_a, topic_b = names.topic(by_id["shop.orders"]), names.topic(by_id["shop.refunds"])
    group = names.consumer_group(by_id[PROCESSOR])
    platform = acl_broker.config("mesh-platform")

    # the platform's own user is a super user: it creates topics and writes without any ACL
    admin = AdminClient(platform)
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in (topic_a, topic_b)]).values():
        future.result()
    producer = Producer(platform)
    for t in (topic_a, topic_b):
        producer.produce(t, key=b"1", value=f"first of {t}".encode())
    assert producer.flush(15) == 0

    # nothing granted yet: the plan creates exactly the declared grants, then is in sync
    desired = desired_acls(products)
    assert {(g.principal, g.resource, g.name) for g in desired} == {
        (f"User:{PROCESSOR}", "TOPIC", topic_a),
        (f"User:{PROCESSOR}", "GROUP", "mesh-shop-big_orders"),
        ("User:billing.orders_archive", "TOPIC", topic_a),
        ("User:billing.orders_archive", "GROUP", "mesh-sink-billing-orders_archive"),
    }
    observed = observe_acls(platform)
    assert observed == frozenset()
    actions = plan_acls(desired, observed, platform_principals(products))
    assert sorted(a.verb for a in actions) == ["create"] * 4
    for action in actions:
        apply_acl(action, platform)
    apply_acl(actions[0], platform)  # granting twice is fine
    assert observe_acls(platform) == desired
    assert _plan(acl_broker, products) == []

    # the processor's principal reads its input with its group, and nothing else
    reader = acl_broker.config(PROCESSOR)
    assert _consume(reader, topic_a, group) == ([f"first of {topic_a}".encode()], set())
    assert _consume(reader, topic_b, group) == ([], {KafkaError.TOPIC_AUTHORIZATION_FAILED})
    assert _consume(reader, topic_a, "another-group") == (
        [],
        {KafkaError.GROUP_AUTHORIZATION_FAILED},
    )

    # a grant removed out of band is missing again
    topic_grant = Grant(f"User:{PROCESSOR}", "TOPIC", topic_a)
    for future in admin.delete_acls([to_filter(topic_grant)]).values():
        assert len(future.result()) == 1
    missing = f"User:{PROCESSOR} READ topic {topic_a}"
    assert _plan(acl_broker, products) == [("create", missing)]
    assert _consume(reader, topic_a, group)[1] == {KafkaError.TOPIC_AUTHORIZATION_FAILED}

    # a grant added out of band for a platform principal is drift (a repair deletes it)
    extra = Grant(f"User:{PROCESSOR}", "TOPIC", topic_b)
    for future in admin.create_acls([to_binding(extra)]).values():
        future.result()
    foreign = Grant("User:someone-else", "TOPIC", topic_b)  # not the platform's business
    for future in admin.create_acls([to_binding(foreign)]).values():
        future.result()
    observed = observe_acls(platform)
    actions = plan_acls(desired, observed, platform_principals(products))
    drifted = f"User:{PROCESSOR} READ topic {topic_b}"
    assert [(a.verb, a.name, a.gate) for a in actions] == [
        ("create", missing, ""),
        ("drift", drifted, "repair"),
    ]
    assert _consume(reader, topic_b, group)[0] == [f"first of {topic_b}".encode()]

    for action in actions:
        apply_acl(action, platform)
    assert _plan(acl_broker, products) == []
    assert observe_acls(platform) == desired | {foreign}
    assert _consume(reader, topic_b, group)[1] == {KafkaError.TOPIC_AUTHORIZATION_FAILED}


def test_without_an_authorizer_there_is_nothing_to_plan(tmp_path: Path) -> None:
    """A broker that enforces no ACLs answers SECURITY_DISABLED: observed None, no actions."""
    with pytest.MonkeyPatch.context() as mp:
        _private_broker(mp, tmp_path)
        mp.delenv(EMBEDDED_SASL_ENV, raising=False)
        mp.delenv(EMBEDDED_AUTHORIZER_ENV, raising=False)
        try:
            kafka = up_or_down(progress=lambda line: None)["kafka"]
            observed = observe_acls({"bootstrap.servers": kafka.endpoint})
        finally:
            leftovers = stack.down(progress=lambda line: None)
    assert observed is None
    products = _declare(tmp_path / "domains")
    assert plan_acls(desired_acls(products), observed) == []
    assert not leftovers, leftovers
