"""ACL planning: exactly the inputs' topics and the consumer group, missing grants and drift."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from datamesh.control.acls import (
    Grant,
    desired_acls,
    from_binding,
    plan_acls,
    platform_principals,
    to_binding,
)
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo, TopicSettings


def _product(pid: str, kind: str, inputs: tuple[str, ...] = (), table: str = "") -> DataProduct:
    domain, name = pid.split(".")
    return DataProduct(
        domain=domain,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        description="x",
        owners=("team:x",),
        access="public",
        tier=2,
        slo=Slo(),
        key=("id",),
        inputs=inputs,
        value_schema=None,
        topic=TopicSettings(1, 1, 3_600_000, "delete"),
        compatibility="BACKWARD",
        declared_in=Path(f"/decl/{domain}/products.yaml"),
        source=CdcSource(domain, "public", table) if table else None,
        sink=SinkSettings(mode="upsert") if kind.endswith("_sink") else None,
    )


MOVIES = _product("studio.movies", "cdc", table="movies")
PRODUCTIONS = _product("studio.productions", "cdc", table="productions")
CATALOG = _product("studio.catalog", "processor", ("studio.movies", "studio.productions"))
HISTORY = _product("content.history", "iceberg_sink", ("studio.catalog",))
SERVING = _product("content.serving", "postgres_sink", ("studio.catalog",))
OLD = replace(_product("studio.old", "processor", ("studio.movies",)), retired=True)
ALL = (MOVIES, PRODUCTIONS, CATALOG, HISTORY, SERVING, OLD)


def _read(who: str, resource: str, name: str) -> Grant:
    return Grant(f"User:{who}", resource, name)


DESIRED_CASES = [
    # (id, products, expected grants)
    ("a cdc product reads no other product", (MOVIES,), set()),
    ("a processor reads its input topics with its job's group", (MOVIES, PRODUCTIONS, CATALOG), {
        _read("studio.catalog", "TOPIC", "studio.public.movies"),
        _read("studio.catalog", "TOPIC", "studio.public.productions"),
        _read("studio.catalog", "GROUP", "mesh-studio-catalog"),
    }),
    ("an iceberg sink reads with its sink group", (MOVIES, PRODUCTIONS, CATALOG, HISTORY), {
        _read("studio.catalog", "TOPIC", "studio.public.movies"),
        _read("studio.catalog", "TOPIC", "studio.public.productions"),
        _read("studio.catalog", "GROUP", "mesh-studio-catalog"),
        _read("content.history", "TOPIC", "studio.catalog"),
        _read("content.history", "GROUP", "mesh-sink-content-history"),
    }),
    ("a postgres sink reads with its Flink job's group", (MOVIES, PRODUCTIONS, CATALOG, SERVING), {
        _read("studio.catalog", "TOPIC", "studio.public.movies"),
        _read("studio.catalog", "TOPIC", "studio.public.productions"),
        _read("studio.catalog", "GROUP", "mesh-studio-catalog"),
        _read("content.serving", "TOPIC", "studio.catalog"),
        _read("content.serving", "GROUP", "mesh-content-serving"),
    }),
    ("a retired processor is granted nothing", (MOVIES, OLD), set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "products", "expected"), DESIRED_CASES, ids=[c[0] for c in DESIRED_CASES]
)
def test_desired_acls(case: str, products: tuple[DataProduct, ...], expected: set[Grant]) -> None:
    assert desired_acls(products) == expected


def test_desired_acls_refuse_an_input_not_given() -> None:
    with pytest.raises(ValueError, match=r"studio.catalog reads studio.productions"):
        desired_acls((MOVIES, CATALOG))


DESIRED = desired_acls(ALL)
TOPIC = _read("content.history", "TOPIC", "studio.catalog")
EXTRA = _read("content.history", "TOPIC", "studio.public.productions")
OTHERS = frozenset(
    {
        Grant("User:mesh-test", "TOPIC", "studio.catalog", operation="ALL"),
        Grant("User:ANONYMOUS", "CLUSTER", "kafka-cluster", operation="ALL"),
    }
)
MANAGED = platform_principals(ALL)

PLAN_CASES = [
    # (id, observed, principals, expected (verb, product, name, gate) in order)
    ("no authorizer: nothing to plan", None, None, []),
    ("in sync", DESIRED, None, []),
    ("in sync beside other principals' grants", DESIRED | OTHERS, None, []),
    ("one grant missing", DESIRED - {TOPIC}, None,
     [("create", "content.history", "User:content.history READ topic studio.catalog", "")]),
    ("a grant the declaration does not call for", DESIRED | {EXTRA}, None,
     [("drift", "content.history",
       "User:content.history READ topic studio.public.productions", "repair")]),
    ("a deny is drift too", DESIRED | {replace(TOPIC, permission="DENY")}, None,
     [("drift", "content.history", "User:content.history DENY READ topic studio.catalog",
       "repair")]),
    ("a prefixed grant is not the literal one", (DESIRED - {TOPIC}) | {
        replace(TOPIC, pattern="PREFIXED", name="studio.")}, None,
     [("create", "content.history", "User:content.history READ topic studio.catalog", ""),
      ("drift", "content.history",
       "User:content.history READ topic studio. (prefixed)", "repair")]),
    ("a retired product's leftover grant: ignored by default",
     DESIRED | {_read("studio.old", "TOPIC", "studio.public.movies")}, None, []),
    ("a retired product's leftover grant: drift among the platform's principals",
     DESIRED | {_read("studio.old", "TOPIC", "studio.public.movies")}, MANAGED,
     [("drift", "studio.old", "User:studio.old READ topic studio.public.movies", "repair")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "observed", "principals", "expected"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES]
)
def test_plan_acls(
    case: str,
    observed: frozenset[Grant] | None,
    principals: frozenset[str] | None,
    expected: list[tuple[str, str, str, str]],
) -> None:
    actions = plan_acls(DESIRED, observed, principals)
    assert [(a.verb, a.product, a.name, a.gate) for a in actions] == expected
    for action in actions:
        assert action.resource == "acl"
        assert Grant.from_json(action.params).describe() == action.name


def test_an_empty_cluster_gets_every_grant_in_product_order() -> None:
    actions = plan_acls(DESIRED, frozenset())
    assert {Grant.from_json(a.params) for a in actions} == DESIRED
    assert [a.product for a in actions] == sorted(a.product for a in actions)
    assert all(a.verb == "create" and a.changes and not a.gate for a in actions)


def test_a_grant_survives_the_admin_api_binding() -> None:
    for grant in (TOPIC, replace(EXTRA, pattern="PREFIXED", permission="DENY", host="10.0.0.1")):
        assert from_binding(to_binding(grant)) == grant
