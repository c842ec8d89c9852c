"""``plan_connector`` is pure: declared tables against what exists gives the connector's actions
(create, tables added and removed, drift that only a re-snapshot repairs, in sync); ``batch``
merges one connector's table changes so apply restarts it once."""

from __future__ import annotations

from typing import Any

import pytest

from datamesh.control.actions import Action
from datamesh.control.connector_apply import batch
from datamesh.control.connectors import ConnectorSpec, ObservedConnector, plan_connector

A, B, C = "public.a", "public.b", "public.c"
PRODUCTS = {A: "shop.a", B: "shop.b", C: "shop.c"}
SPEC_A = ConnectorSpec("shop", "orders", (A,))
SPEC_AB = ConnectorSpec("shop", "orders", (A, B))
SLOT = "shop_orders_cdc"


def seen(
    published: set[str] | None,
    *,
    slot: bool = True,
    recorded: bool = True,
    lost: bool = False,
    running: bool = True,
    captured: set[str] | None = None,
    started_here: bool = True,
    error: str = "",
) -> ObservedConnector:
    """An observation; ``captured`` defaults to what the publication holds (``started_here``
    False: no command file, nothing known about what it captured)."""
    tables = (published if captured is None else captured) if started_here else None
    return ObservedConnector(
        publication=None if published is None else frozenset(published),
        slot=slot,
        slot_recorded=recorded,
        slot_lost=lost,
        running=running,
        captured=None if tables is None else frozenset(tables),
        state="streaming" if running else "stopped",
        error=error,
    )


def summary(actions: list[Action]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(verb, product, params without the product list, gate) of each action."""
    out: list[tuple[str, str, dict[str, Any], str]] = []
    for a in actions:
        assert a.resource == "connector" and a.name == "shop-orders-cdc", a
        params = {k: v for k, v in a.params.items() if k != "products"}
        out.append((a.verb, a.product, params, a.gate))
    return out


RESNAPSHOT = {"repair": "resnapshot", "tables": [A, B]}

CASES: list[tuple[str, ConnectorSpec, ObservedConnector | None, list[Any]]] = [
    ("new connector", SPEC_AB, None, [("create", "shop.a", {"tables": [A, B]}, "")]),
    ("in sync", SPEC_AB, seen({A, B}), [("in_sync", "shop.a", {}, "")]),
    (
        "table added to a running connector",
        SPEC_AB,
        seen({A}),
        [("update", "shop.b", {"add": [B]}, "")],
    ),
    (
        "table removed",
        SPEC_A,
        seen({A, B}),
        [("update", "shop.b", {"remove": [B]}, "")],
    ),
    (
        "one added, one removed",
        ConnectorSpec("shop", "orders", (A, C)),
        seen({A, B}),
        [("update", "shop.c", {"add": [C]}, ""), ("update", "shop.b", {"remove": [B]}, "")],
    ),
    (
        "slot dropped out of band",
        SPEC_AB,
        seen({A, B}, slot=False, running=False),
        [("drift", "shop.a", RESNAPSHOT, "repair")],
    ),
    (
        "slot lost WAL",
        SPEC_AB,
        seen({A, B}, lost=True),
        [("drift", "shop.a", RESNAPSHOT, "repair")],
    ),
    (
        "publication dropped out of band",
        SPEC_AB,
        seen(None, captured={A, B}, running=False),
        [("drift", "shop.a", RESNAPSHOT, "repair")],
    ),
    (
        "captured table dropped from the publication out of band",
        SPEC_AB,
        seen({A}, captured={A, B}),
        [("drift", "shop.b", {"add": [B]}, "repair")],
    ),
    (
        "table in the publication the connector does not capture (ALTER by hand)",
        SPEC_AB,
        seen({A, B}, captured={A}),
        [("update", "shop.b", {"add": [B]}, "")],
    ),
    (
        "stopped, in sync: start it",
        SPEC_AB,
        seen({A, B}, running=False),
        [("create", "shop.a", {"tables": [A, B]}, "")],
    ),
    (
        "stopped, table added: source first, then start",
        SPEC_AB,
        seen({A}, running=False),
        [("update", "shop.b", {"add": [B]}, ""), ("create", "shop.a", {"tables": [A, B]}, "")],
    ),
    (
        "first start crashed after the publication, before the slot: not drift",
        SPEC_AB,
        seen({A, B}, slot=False, recorded=False, running=False, started_here=False),
        [("create", "shop.a", {"tables": [A, B]}, "")],
    ),
    (
        "a first start still retrying before it created anything: not drift",
        SPEC_AB,
        seen(None, slot=False, recorded=False, running=True, captured={A, B}),
        [("create", "shop.a", {"tables": [A, B]}, "")],
    ),
    (
        "never started from this work directory: the publication is what it followed",
        SPEC_AB,
        seen({A}, running=False, started_here=False),
        [("update", "shop.b", {"add": [B]}, ""), ("create", "shop.a", {"tables": [A, B]}, "")],
    ),
]


@pytest.mark.parametrize(
    ("spec", "observed", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_connector(
    spec: ConnectorSpec, observed: ObservedConnector | None, expected: list[Any]
) -> None:
    actions = plan_connector(spec, observed, PRODUCTS.get)
    assert summary(actions) == expected
    for action in actions:
        assert action.params.get("products", [action.product])[0] == action.product


def test_connector_wide_actions_list_every_product() -> None:
    (create,) = plan_connector(SPEC_AB, None, PRODUCTS.get)
    assert create.params["products"] == ["shop.a", "shop.b"]
    assert create.changes and not create.breaks


def test_drift_says_what_was_lost_and_what_repairs_it() -> None:
    (drift,) = plan_connector(SPEC_AB, seen({A, B}, slot=False, running=False), PRODUCTS.get)
    assert f"replication slot {SLOT} was dropped out of band (while publication exists)" in (
        drift.detail
    )
    assert "changes made since were not captured" in drift.detail
    assert "a re-snapshot repairs" in drift.detail
    assert "[needs --repair]" in drift.describe() and not drift.changes


def test_a_removed_table_without_a_declaration_is_named_by_its_topic() -> None:
    (remove,) = plan_connector(SPEC_A, seen({A, B}), {A: "shop.a"}.get)
    assert remove.product == "shop.public.b"
    assert "topic shop.public.b stays until the product is retired" in remove.detail


def test_a_spec_without_tables_is_not_planned_here() -> None:
    assert plan_connector(ConnectorSpec("shop", "orders", ()), seen({A}), PRODUCTS.get) == []


def test_batch_merges_table_changes_of_one_connector() -> None:
    spec = ConnectorSpec("shop", "orders", (A, B, C))
    actions = plan_connector(spec, seen({A, "public.old"}, running=False), PRODUCTS.get)
    assert [a.verb for a in actions] == ["update", "update", "update", "create"]
    merged = batch(actions)
    assert [a.verb for a in merged] == ["update", "create"]
    assert dict(merged[0].params) == {"add": [B, C], "remove": ["public.old"]}
    assert merged[0].product == "shop.b" and merged[1] == actions[-1]


def test_batch_keeps_repairs_apart_from_updates() -> None:
    spec = ConnectorSpec("shop", "orders", (A, B, C))
    actions = plan_connector(spec, seen({A}, captured={A, B}), PRODUCTS.get)
    assert [(a.verb, a.gate) for a in batch(actions)] == [("drift", "repair"), ("update", "")]
