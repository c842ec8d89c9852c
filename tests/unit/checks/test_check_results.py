"""Outcomes as Dagster check specs and results (no instance, no services)."""

from __future__ import annotations

import dataclasses
from typing import Any

import dagster as dg
import pytest

from datamesh.checks.outcome import Outcome, unreachable
from datamesh.specs import DataProduct, load_products
from mesh_assets import DOMAINS_DIR
from mesh_assets.checks import (
    TOTAL_KEY,
    blocking,
    check_specs,
    description,
    evaluations,
    result_metadata,
    severity,
)

BY_ID = {p.id: p for p in load_products(DOMAINS_DIR)}
MOVIES = BY_ID["studio.movies"]  # tier 1, owners team:studio-eng
TITLES = BY_ID["content.localized_titles"]  # tier 1, two owners
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN

STUCK = Outcome(
    "freshness",
    passed=False,
    state="stuck",
    summary="newest event 10.0 min old: connector studio-studio-cdc is not running",
    measured=600.0,
    objective=300.0,
    unit="seconds",
    hop="connector studio-studio-cdc",
    details={"newest_event_time": "2023-11-14T22:03:20+00:00"},
)
FRESH = Outcome("freshness", True, "fresh", "newest event 60 s old", 60.0, 300.0, "seconds")


def tier(pid: str, t: int) -> DataProduct:
    return dataclasses.replace(BY_ID[pid], tier=t)


@pytest.mark.parametrize(
    ("t", "check", "severe", "blocks"),
    [
        (1, "freshness", ERROR, True),
        (1, "lag", ERROR, False),  # lag never blocks: it measures the sinks it would stop
        (1, "dead_letters", ERROR, True),
        (1, "schema", ERROR, True),
        (1, "latency_p99", ERROR, True),
        (2, "freshness", WARN, False),
        (2, "schema", WARN, False),
        (3, "dead_letters", WARN, False),
        (1, "upstream_schema", ERROR, True),
        (3, "upstream_schema", ERROR, True),  # a paused pipeline needs its owners at any tier
    ],
)
def test_severity_and_blocking_by_tier(
    t: int, check: str, severe: dg.AssetCheckSeverity, blocks: bool
) -> None:
    p = tier("content.localized_titles", t)
    assert (severity(p, check), blocking(p, check)) == (severe, blocks)


@pytest.mark.parametrize(
    ("pid", "specs"),
    [
        ("studio.movies", {"freshness": True, "lag": False, "schema": True}),
        ("studio.productions", {"freshness": False, "lag": False, "schema": False}),
        (
            "content.localized_titles",
            {
                "freshness": True,
                "lag": False,
                "dead_letters": True,
                "schema": True,
                "upstream_schema": True,
            },
        ),
        (
            "content.localized_titles_serving",
            {"freshness": True, "dead_letters": True, "upstream_schema": True},
        ),
        ("studio.movies_history", {"freshness": False, "upstream_schema": True}),
    ],
)
def test_check_specs(pid: str, specs: dict[str, bool]) -> None:
    p = BY_ID[pid]
    got = check_specs(p)
    assert {s.name: s.blocking for s in got} == specs
    assert {s.asset_key for s in got} == {dg.AssetKey(pid.split("."))}
    for s in got:
        assert s.metadata == {"owners": ", ".join(p.owners), "tier": p.tier}
        assert s.description


def test_check_spec_descriptions_state_the_objective() -> None:
    by_name = {s.name: s.description for s in check_specs(MOVIES)}
    assert by_name["freshness"] == "Newest event time within 0:05:00 (idle sources pass)."
    assert by_name["lag"] == "Consumers within 10000 messages of the end of the topic."
    schema = by_name["schema"]
    assert schema is not None and "BACKWARD" in schema


def test_metadata_of_a_failure() -> None:
    assert result_metadata(MOVIES, STUCK) == {
        "owners": "team:studio-eng",
        "state": "stuck",
        "summary": STUCK.summary,
        "measured_seconds": 600.0,
        "objective_seconds": 300.0,
        "likely_hop": "connector studio-studio-cdc",
        "newest_event_time": "2023-11-14T22:03:20+00:00",
    }


@pytest.mark.parametrize(
    ("o", "present", "absent"),
    [
        pytest.param(FRESH, {"measured_seconds": 60.0, "objective_seconds": 300.0},
                     ("likely_hop",), id="pass: no hop"),
        pytest.param(Outcome("schema", True, "ok", "matches"), {"state": "ok"},
                     ("measured", "objective", "likely_hop"), id="nothing measured"),
        pytest.param(Outcome("x", False, "over", "s", 3, 1), {"measured": 3, "objective": 1},
                     ("measured_",), id="no unit: plain keys"),
        pytest.param(Outcome("latency_p99", True, "idle", "none", None, 150.0, "ms"),
                     {"objective_ms": 150.0}, ("measured_ms",), id="objective only"),
        pytest.param(unreachable("lag", "kafka", "broker down"),
                     {"likely_hop": "kafka", "state": "could not evaluate"}, ("measured",),
                     id="could not evaluate"),
        pytest.param(Outcome("dead_letters", False, "over", "2 new", 2, 0, "messages",
                             "sink x", {TOTAL_KEY: 7, "topic": "t.dlq"}),
                     {"measured_messages": 2, "objective_messages": 0, TOTAL_KEY: 7},
                     (), id="dead letters keep the total the next evaluation counts from"),
    ],
)  # fmt: skip
def test_metadata(o: Outcome, present: dict[str, Any], absent: tuple[str, ...]) -> None:
    meta = result_metadata(MOVIES, o)
    assert meta["owners"] == "team:studio-eng" and meta["summary"] == o.summary
    for key, value in present.items():
        assert meta[key] == value, key
    for key in absent:
        assert key not in meta, key


def test_dict_details_become_json_metadata() -> None:
    o = Outcome("lag", True, "ok", "s", 1, 5, "messages", details={"consumers": {"a": 1}})
    assert result_metadata(MOVIES, o)["consumers"] == dg.MetadataValue.json({"a": 1})


@pytest.mark.parametrize(
    ("p", "o", "text"),
    [
        (MOVIES, FRESH, "newest event 60 s old"),
        (
            MOVIES,
            STUCK,
            "studio.movies: newest event 10.0 min old: connector studio-studio-cdc is not "
            "running. Likely hop: connector studio-studio-cdc. Owners: team:studio-eng.",
        ),
        (
            TITLES,
            Outcome("schema", False, "over", "nothing registered"),
            "content.localized_titles: nothing registered. "
            "Owners: team:content-platform, content-data@example.com.",
        ),
    ],
)
def test_description(p: DataProduct, o: Outcome, text: str) -> None:
    assert description(p, o) == text


def test_evaluations_carry_verdict_severity_and_blocking() -> None:
    productions = BY_ID["studio.productions"]  # tier 2
    lag = Outcome("lag", False, "over", "behind", 9, 1, "messages", "h")
    got = evaluations([(MOVIES, STUCK), (MOVIES, lag), (productions, FRESH)])
    assert [
        (e.asset_key.to_user_string(), e.check_name, e.passed, e.severity, e.blocking) for e in got
    ] == [
        ("studio/movies", "freshness", False, ERROR, True),
        ("studio/movies", "lag", False, ERROR, False),
        ("studio/productions", "freshness", True, WARN, False),
    ]
    assert got[0].description == description(MOVIES, STUCK)
    assert got[0].metadata["likely_hop"] == dg.MetadataValue.text("connector studio-studio-cdc")
