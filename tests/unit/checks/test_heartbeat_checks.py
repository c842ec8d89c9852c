"""Freshness and latency with synthetic heartbeats: tables of (observed heartbeats -> outcome).

``studio.movies`` declares a heartbeat here; ``studio.movie_catalog`` and the PostgreSQL sink
``content.localized_titles_serving`` are downstream of it. Every case starts from the healthy
world of :mod:`test_evaluate` with the *real* events twenty minutes old (older than every objective)
and changes what heartbeats arrived where.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from datamesh.checks.evaluate import evaluate, heartbeat_latency
from datamesh.checks.observed import Observed, Topic
from datamesh.checks.outcome import FRESHNESS, LATENCY, Outcome
from datamesh.heartbeat import Arrival, Beat
from datamesh.specs.product import DataProduct, Slo
from tests.unit.checks.test_evaluate import (
    BY_ID,
    CATALOG_HOP,
    MIN,
    NOW,
    SERVING_HOP,
    S,
    reader,
    world,
)

MOVIES = dataclasses.replace(BY_ID["studio.movies"], heartbeat=timedelta(seconds=10))
HB_BY_ID: dict[str, DataProduct] = {**BY_ID, MOVIES.id: MOVIES}
CATALOG, SERVING = "studio.movie_catalog", "content.localized_titles_serving"
OLD = {pid: 20 * MIN for pid in BY_ID}  # every real event older than every objective
SRC = "studio.public.movies"


def beats(*ages_s: float, seq0: int = 1) -> tuple[Arrival, ...]:
    """Heartbeats committed ``age`` seconds ago, arriving 50 ms later."""
    return tuple(
        Arrival(Beat(SRC, seq0 + i, "c", int(NOW - age * S)), int(NOW - age * S + 50))
        for i, age in enumerate(ages_s)
    )


def observed(heartbeats: dict[str, tuple[Arrival, ...]], **over: Any) -> Observed:
    return dataclasses.replace(world(OLD, **over), heartbeats=heartbeats)


def freshness(pid: str, obs: Observed, products: dict[str, DataProduct] = HB_BY_ID) -> Outcome:
    p = products[pid]
    if p.slo.freshness is None:  # give the sink an objective to check
        p = dataclasses.replace(p, slo=Slo(freshness=timedelta(minutes=5)))
    by_id = {**products, p.id: p}
    (found,) = [o for o in evaluate([p], by_id, obs, {})[p.id] if o.check == FRESHNESS]
    return found


STOPPED = [reader(CATALOG, SRC, running=False)]

CASES = [
    pytest.param(CATALOG, {CATALOG: beats(20, 10)}, {}, True, "fresh", None, "10 s old",
                 id="processor: real data old, a heartbeat just arrived"),
    pytest.param(CATALOG, {}, {}, False, "stuck", CATALOG_HOP, "no heartbeat of " + SRC,
                 id="processor: no heartbeat reached it although all runs: no idle pass"),
    pytest.param(CATALOG, {CATALOG: beats(900)}, {"readers": STOPPED}, False, "stuck",
                 CATALOG_HOP, "is not running",
                 id="processor: its job stopped, the heartbeats it wrote age"),
    pytest.param("studio.movies", {"studio.movies": beats(3)}, {}, True, "fresh", None, "3 s old",
                 id="cdc: its own heartbeat"),
    pytest.param(SERVING, {}, {}, False, "stuck", SERVING_HOP, "no heartbeat",
                 id="postgres sink: upstream fresh is not enough, its table got none"),
    pytest.param(SERVING, {SERVING: beats(4)}, {}, True, "fresh", None, "4 s old",
                 id="postgres sink: its heartbeat table has a new row"),
]  # fmt: skip


@pytest.mark.parametrize(("pid", "hb", "over", "passed", "state", "hop", "words"), CASES)
def test_freshness_with_heartbeats(
    pid: str,
    hb: dict[str, tuple[Arrival, ...]],
    over: dict[str, Any],
    passed: bool,
    state: str,
    hop: str | None,
    words: str,
) -> None:
    upstream = {"studio.movies": beats(1), "content.localized_titles": beats(2)}
    o = freshness(pid, observed({**upstream, **hb}, **over))
    assert (o.passed, o.state, o.hop) == (passed, state, hop), o
    assert words in o.summary, o.summary


def test_without_a_declared_heartbeat_an_old_product_stays_idle() -> None:
    o = freshness(CATALOG, observed({}), BY_ID)
    assert (o.passed, o.state) == (True, "idle"), o


def test_freshness_details_name_the_newest_heartbeat() -> None:
    o = freshness(CATALOG, observed({CATALOG: beats(7)}))
    assert o.details["newest_heartbeat"].startswith("2023-11-14T22:13:13")


def test_cdc_latency_samples_heartbeats_when_the_table_is_idle() -> None:
    p = dataclasses.replace(MOVIES, slo=Slo(latency_p99=timedelta(seconds=1)))
    obs = world(OLD)
    obs.topics[SRC] = Topic({0: 10}, NOW - S, (40, 60, 900))  # gather puts heartbeats here too
    (o,) = [x for x in evaluate([p], {**HB_BY_ID, p.id: p}, obs, {})[p.id] if x.check == LATENCY]
    assert (o.passed, o.measured) == (True, 900), o


def test_per_hop_latency_of_a_processor_is_from_its_input() -> None:
    obs = observed(
        {
            "studio.movies": beats(10, 5),  # arrive 50 ms after commit
            CATALOG: tuple(
                dataclasses.replace(a, arrived_ms=a.arrived_ms + 250) for a in beats(10, 5)
            ),
        }
    )
    figures = heartbeat_latency(HB_BY_ID[CATALOG], HB_BY_ID, obs)
    assert figures is not None
    assert (figures.e2e_p99_ms, figures.hop_p99_ms, figures.samples) == (300, 250, 2)
    assert heartbeat_latency(BY_ID[CATALOG], BY_ID, obs) is None  # nothing declared upstream
