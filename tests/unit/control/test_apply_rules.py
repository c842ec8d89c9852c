"""What ``apply`` refuses before touching anything, and which repairs the drift sensor may make
by itself (pure parts)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from datamesh.control.actions import Action, Affected
from datamesh.control.apply import validate
from datamesh.control.drift import repairs, safe, verdicts
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

DEMO = list(load_products(DOMAINS_DIR))
BROKEN = Affected("studio.movie_catalog", ("team:studio-eng",), "breaks", ("status",))


def test_a_change_that_breaks_a_consumer_is_refused_naming_it() -> None:
    change = Action("studio.movies", "subject", "s-value", "update", "register", impact=(BROKEN,))
    (reason,) = validate(DEMO, [change])
    assert "breaks studio.movie_catalog (consumes status; owner team:studio-eng)" in reason
    assert "update the consumer's declaration" in reason


def test_drift_that_would_break_a_consumer_is_reported_not_refused() -> None:
    drift = Action(
        "studio.movies", "subject", "s-value", "drift", "declared differs", impact=(BROKEN,)
    )
    assert validate(DEMO, [drift]) == []
    assert drift.breaks  # but `mesh plan --exit-code` returns 2 for it


@pytest.mark.parametrize(
    ("action", "is_safe"),
    [
        (Action("p", "topic", "t", "create", ""), True),
        (Action("p", "flink_job", "j", "create", ""), True),
        (Action("p", "flink_job", "j", "update", ""), True),
        (Action("p", "connector", "c", "create", ""), True),
        (
            Action("p", "topic", "t", "drift", "", {"configs": {"retention.ms": "1"}}, "repair"),
            True,
        ),
        (Action("p", "topic", "t", "drift", "partitions differ"), False),
        (Action("p", "topic", "t", "delete", "", gate="allow_delete"), False),
        (Action("p", "flink_job", "j", "delete", ""), False),
        (Action("p", "product", "p", "refuse", ""), False),
        (Action("p", "product", "p", "delete", ""), False),
        (Action("p", "acl", "a", "drift", "", {"principal": "x"}, "repair"), True),
    ],
)
def test_which_repairs_are_safe(action: Action, is_safe: bool) -> None:
    assert safe(action) is is_safe


def test_only_products_declaring_repair_auto_are_repaired() -> None:
    auto = {p.id: replace(p, repair="auto") if p.id == "studio.movie_catalog" else p for p in DEMO}
    mine = Action("studio.movie_catalog", "flink_job", "j", "create", "")
    theirs = Action("content.localized_titles", "flink_job", "k", "create", "")
    assert repairs(auto, [mine, theirs]) == [mine]


def test_verdicts_name_each_difference_per_product() -> None:
    a = Action("studio.movies", "topic", "t", "create", "missing")
    found = {v.product: v for v in verdicts(DEMO, [a])}
    assert not found["studio.movies"].in_sync
    assert found["studio.movies"].summary.startswith("1 difference with the declaration: CREATE")
    assert all(v.in_sync for k, v in found.items() if k != "studio.movies")
    assert len(found) == len(DEMO)
