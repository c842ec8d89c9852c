"""The SLO checks are pure: tables of (declarations, observed snapshot) -> outcomes.

Every case starts from a healthy pipeline over the demo domains (:func:`world`: connectors
streaming, every job running, nothing pending, every topic's newest event a minute old) and
changes one thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from datamesh.checks.evaluate import (
    GROUPS,
    SLOT_BEHIND_BYTES,
    STATUS_STALE_S,
    checks_for,
    dlq_topic,
    evaluate,
    hop_of,
)
from datamesh.checks.observed import Connector, Observed, Reader, Topic
from datamesh.checks.outcome import Outcome
from datamesh.pauses import Pause
from datamesh.specs import DataProduct, Slo, load_products
from mesh_assets import DOMAINS_DIR

NOW = 1_700_000_000_000
S, MIN = 1000, 60_000
PRODUCTS = load_products(DOMAINS_DIR)
BY_ID = {p.id: p for p in PRODUCTS}

STUDIO_CDC, CONTENT_CDC = "studio-studio-cdc", "content-content-cdc"
MOVIES_T, PRODUCTIONS_T, ARTWORK_T = (
    "studio.public.movies",
    "studio.public.productions",
    "content.public.artwork",
)
CATALOG_T, TITLES_T = "studio.movie_catalog", "content.localized_titles"
CATALOG_HOP = "processor studio.movie_catalog (flink job mesh-studio-movie_catalog)"
TITLES_HOP = "processor content.localized_titles (flink job mesh-content-localized_titles)"
SERVING_HOP = (
    "sink content.localized_titles_serving (flink job mesh-content-localized_titles_serving)"
)
HISTORY_HOP = "sink studio.movies_history (iceberg)"
TITLE_CATALOG_HOP = "sink content.title_catalog (iceberg)"


# -- building snapshots ---------------------------------------------------------------------


def status(**over: Any) -> dict[str, Any]:
    """A connector status document (:mod:`datamesh.cdc.status`) of a healthy connector."""
    tables = {
        t: {"topic": f"x.{t}", "events": 1, "paused": None}
        for t in ("public.movies", "public.productions", "public.artwork")
    }
    base = {
        "state": "streaming",
        "updated_at": NOW / 1000 - 5,
        "slot_lag_bytes": 4096,
        "tables": tables,
        "error": None,
    }
    return {**base, **over}


def paused(table: str, reason: str) -> dict[str, Any]:
    """Status of a connector one of whose tables paused (the connector reports ``paused``)."""
    doc = status(state="paused", error=reason)
    doc["tables"][table]["paused"] = reason
    return doc


def reader(
    pid: str,
    topic: str,
    running: bool = True,
    pending_age_ms: int | None = None,
    committed: dict[int, int] | None = None,
) -> Reader:
    p = BY_ID[pid]
    pending = None if pending_age_ms is None else NOW - pending_age_ms
    return Reader(pid, hop_of(p), topic, committed or {}, running, pending)


def world(
    ages: Mapping[str, int | None] | None = None,
    *,
    connectors: Iterable[Connector] = (),
    readers: Iterable[Reader] = (),
    sink_ages: Mapping[str, int | None] | None = None,
    ends: dict[str, dict[int, int]] | None = None,
    latencies: dict[str, tuple[int, ...]] | None = None,
    dead_letters: dict[str, int] | None = None,
    errors: dict[str, str] | None = None,
) -> Observed:
    """A healthy pipeline, then the given changes. ``ages``: product id -> newest event age in
    ms (None: no event); readers replace the default reader of the same (topic, product)."""
    ages = {**{p.id: MIN for p in PRODUCTS}, **(ages or {})}
    ends = ends or {}
    topics = {
        _topic(p): Topic(
            ends.get(_topic(p), {0: 0}),
            _ago(ages[p.id]),
            (latencies or {}).get(_topic(p), ()),
        )
        for p in PRODUCTS
        if p.is_kafka_backed
    }
    by_key = {(r.topic, r.product_id): r for r in _default_readers()}
    by_key.update({(r.topic, r.product_id): r for r in readers})
    grouped: dict[str, list[Reader]] = {}
    for r in by_key.values():
        grouped.setdefault(r.topic, []).append(r)
    conns = {n: Connector(n, status(), True) for n in (STUDIO_CDC, CONTENT_CDC)}
    conns.update({c.name: c for c in connectors})
    sinks: dict[str, int | None] = {p.id: NOW - MIN for p in PRODUCTS if p.kind == "iceberg_sink"}
    sinks.update({k: _ago(v) for k, v in (sink_ages or {}).items()})
    return Observed(
        now_ms=NOW,
        topics=topics,
        readers=grouped,
        connectors=conns,
        sink_event_ms=sinks,
        dead_letters=dead_letters or {},
        errors=errors or {},
    )


def _ago(age_ms: int | None) -> int | None:
    """The event time ``age_ms`` before :data:`NOW` (None: no event)."""
    return None if age_ms is None else NOW - age_ms


def _topic(p: DataProduct) -> str:
    if p.source is not None:
        return f"{p.domain}.{p.source.schema}.{p.source.table}"
    return p.id


def _default_readers() -> list[Reader]:
    return [reader(p.id, _topic(BY_ID[i])) for p in PRODUCTS for i in p.inputs]


def outcome(
    product: str | DataProduct, check: str, obs: Observed, previous: int | None = None
) -> Outcome:
    p = BY_ID[product] if isinstance(product, str) else product
    by_id = {**BY_ID, p.id: p}
    prev = {} if previous is None else {p.id: previous}
    (found,) = [o for o in evaluate([p], by_id, obs, prev)[p.id] if o.check == check]
    return found


def with_slo(pid: str, **slo: Any) -> DataProduct:
    return dataclasses.replace(BY_ID[pid], slo=Slo(**slo))


def with_dead_letters(pid: str) -> DataProduct:
    """The sink ``pid`` with bad records sent to its dead-letter topic."""
    sink = BY_ID[pid].sink
    assert sink is not None
    return dataclasses.replace(BY_ID[pid], sink=dataclasses.replace(sink, on_bad_record="dlq"))


def assert_outcome(
    o: Outcome,
    passed: bool,
    state: str,
    hop: str | None,
    words: str | tuple[str, ...],
    measured: Any,
    objective: Any,
) -> None:
    assert (o.passed, o.state, o.hop) == (passed, state, hop), o
    for w in (words,) if isinstance(words, str) else words:
        assert w in o.summary, (w, o.summary)
    assert (o.measured, o.objective) == (measured, objective), o


def dead(name: str) -> Connector:
    return Connector(name, status(), alive=False)


# -- freshness: CDC ---------------------------------------------------------------------------

MOVIES_OLD = {"studio.movies": 10 * MIN}  # SLO 5 min
CDC_FRESHNESS = [
    pytest.param(world(), True, "fresh", None, "newest event 60 s old", 60.0, id="within"),
    pytest.param(world({"studio.movies": 5 * MIN}), True, "fresh", None, "5.0 min", 300.0,
                 id="exactly the objective"),
    pytest.param(world(MOVIES_OLD, connectors=[dead(CONTENT_CDC)]), True, "idle", None,
                 ("10.0 min old", "nothing waits"), 600.0,
                 id="old, own connector healthy (another dead): idle"),
    pytest.param(world({"studio.movies": None}), True, "idle", None,
                 ("no event yet", "nothing waits"), None, id="no data, healthy connector: idle"),
    pytest.param(world({"studio.movies": MIN}, connectors=[dead(STUDIO_CDC)]), True, "fresh",
                 None, "60 s old", 60.0, id="fresh wins over a dead connector"),
    pytest.param(world(MOVIES_OLD, connectors=[dead(STUDIO_CDC)]), False, "stuck",
                 f"connector {STUDIO_CDC}", ("10.0 min old", "is not running"), 600.0,
                 id="connector process not alive"),
    pytest.param(world({"studio.movies": None}, connectors=[dead(STUDIO_CDC)]), False, "stuck",
                 f"connector {STUDIO_CDC}", ("no event yet", "is not running"), None,
                 id="no data, connector not alive"),
    pytest.param(world(MOVIES_OLD, connectors=[Connector(STUDIO_CDC, None, True)]), False,
                 "stuck", f"connector {STUDIO_CDC}", "is not running", 600.0,
                 id="no status document"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(updated_at=NOW / 1000 - STATUS_STALE_S - 1), True)
        ]),
        False, "stuck", f"connector {STUDIO_CDC}", f"has not reported for {STATUS_STALE_S + 1} s",
        600.0, id="status stale"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(updated_at=NOW / 1000 - STATUS_STALE_S), True)
        ]),
        True, "idle", None, "nothing waits", 600.0, id="status exactly STATUS_STALE_S old"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(state="retrying", error="connection refused"), True)
        ]),
        False, "stuck", f"connector {STUDIO_CDC}", "is retrying: connection refused", 600.0,
        id="retrying"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(state="failed", error="slot dropped"), True)
        ]),
        False, "stuck", f"connector {STUDIO_CDC}", "is failed: slot dropped", 600.0,
        id="failed"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, paused("public.movies", "column type changed"), True)
        ]),
        False, "stuck", f"connector {STUDIO_CDC}", "paused public.movies: column type changed",
        600.0, id="its table paused"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, paused("public.productions", "column type changed"), True)
        ]),
        True, "idle", None, "nothing waits", 600.0,
        id="another table of the connector paused: this one still flows"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(slot_lag_bytes=SLOT_BEHIND_BYTES + 1), True)
        ]),
        False, "stuck", f"connector {STUDIO_CDC}", f"{SLOT_BEHIND_BYTES + 1} bytes of WAL behind",
        600.0, id="slot lag over SLOT_BEHIND_BYTES"),
    pytest.param(
        world(MOVIES_OLD, connectors=[
            Connector(STUDIO_CDC, status(slot_lag_bytes=SLOT_BEHIND_BYTES), True)
        ]),
        True, "idle", None, "nothing waits", 600.0, id="slot lag exactly SLOT_BEHIND_BYTES"),
    pytest.param(
        world(MOVIES_OLD, connectors=[Connector(STUDIO_CDC, status(slot_lag_bytes=None), True)]),
        True, "idle", None, "nothing waits", 600.0, id="slot lag unknown yet"),
]  # fmt: skip


@pytest.mark.parametrize(("obs", "passed", "state", "hop", "words", "measured"), CDC_FRESHNESS)
def test_cdc_freshness(
    obs: Observed, passed: bool, state: str, hop: str | None, words: Any, measured: Any
) -> None:
    o = outcome("studio.movies", "freshness", obs)
    assert_outcome(o, passed, state, hop, words, measured, 300.0)
    assert o.unit == "seconds"


def test_freshness_details_carry_the_newest_event_time() -> None:
    assert outcome("studio.movies", "freshness", world()).details == {
        "newest_event_time": "2023-11-14T22:12:20+00:00"
    }
    o = outcome("studio.movies", "freshness", world({"studio.movies": None}))
    assert o.details == {"newest_event_time": "never"}


# -- freshness: processors and sinks ----------------------------------------------------------

CATALOG_OLD = {"studio.movie_catalog": 20 * MIN}  # SLO 10 min
PIPELINE_FRESHNESS = [
    # processor
    pytest.param("studio.movie_catalog", world(CATALOG_OLD | {"studio.movie_catalog": 2 * MIN}),
                 True, "fresh", None, "2.0 min old", 120.0, id="processor fresh output"),
    pytest.param("studio.movie_catalog", world(CATALOG_OLD), True, "idle", None,
                 ("20.0 min old", "nothing waits"), 1200.0,
                 id="processor running, nothing pending: idle"),
    pytest.param("studio.movie_catalog",
                 world(CATALOG_OLD, readers=[reader("studio.movie_catalog", PRODUCTIONS_T,
                                                    pending_age_ms=9 * MIN)]),
                 True, "idle", None, "nothing waits", 1200.0,
                 id="processor pending input younger than the window"),
    pytest.param("studio.movie_catalog",
                 world(CATALOG_OLD, readers=[reader("studio.movie_catalog", MOVIES_T, False),
                                             reader("studio.movie_catalog", PRODUCTIONS_T, False)]),
                 False, "stuck", CATALOG_HOP, f"{CATALOG_HOP} is not running", 1200.0,
                 id="processor job not running"),
    pytest.param("studio.movie_catalog", world({"studio.movie_catalog": None}, readers=[
                     reader("studio.movie_catalog", MOVIES_T, False)]),
                 False, "stuck", CATALOG_HOP, ("no event yet", "is not running"), None,
                 id="processor never wrote and job not running"),
    pytest.param("studio.movie_catalog",
                 world(CATALOG_OLD, readers=[reader("studio.movie_catalog", PRODUCTIONS_T,
                                                    pending_age_ms=11 * MIN)]),
                 False, "stuck", CATALOG_HOP,
                 f"has not consumed {PRODUCTIONS_T} messages waiting for 11.0 min", 1200.0,
                 id="processor pending input older than the window"),
    pytest.param("studio.movie_catalog", world(CATALOG_OLD, connectors=[dead(STUDIO_CDC)]),
                 False, "stuck", f"connector {STUDIO_CDC}",
                 f"connector {STUDIO_CDC} is not running", 1200.0,
                 id="processor fine, upstream connector dead"),
    pytest.param("studio.movie_catalog",
                 world(CATALOG_OLD, connectors=[dead(STUDIO_CDC)],
                       readers=[reader("studio.movie_catalog", MOVIES_T, False)]),
                 False, "stuck", f"connector {STUDIO_CDC}", "is not running", 1200.0,
                 id="the hop nearest the source is named first"),
    pytest.param("content.localized_titles",
                 world({"content.localized_titles": 20 * MIN}, connectors=[dead(CONTENT_CDC)]),
                 False, "stuck", f"connector {CONTENT_CDC}", f"{CONTENT_CDC} is not running",
                 1200.0, id="processor's second input's connector dead"),
    pytest.param("studio.movie_catalog",
                 world(CATALOG_OLD, connectors=[
                     Connector(STUDIO_CDC, paused("public.productions", "bad row"), True)]),
                 False, "stuck", f"connector {STUDIO_CDC}", "paused public.productions: bad row",
                 1200.0, id="processor's input table paused"),
    # iceberg sink (SLO 1 h), newest from the table's own event times
    pytest.param("studio.movies_history", world(sink_ages={"studio.movies_history": 10 * MIN}),
                 True, "fresh", None, "10.0 min old", 600.0, id="iceberg fresh"),
    pytest.param("studio.movies_history",
                 world({"studio.movies": MIN}, sink_ages={"studio.movies_history": 2 * 3600 * S}),
                 True, "idle", None, ("2.0 h old", "nothing waits"), 7200.0,
                 id="iceberg: its own event time, not its input's"),
    pytest.param("studio.movies_history", world(sink_ages={"studio.movies_history": None}),
                 True, "idle", None, "no event yet", None, id="iceberg empty table, idle"),
    pytest.param("studio.movies_history",
                 world(sink_ages={"studio.movies_history": 2 * 3600 * S}, readers=[
                     reader("studio.movies_history", MOVIES_T, pending_age_ms=61 * MIN)]),
                 False, "stuck", HISTORY_HOP,
                 f"{HISTORY_HOP} has not consumed {MOVIES_T} messages waiting for 61.0 min",
                 7200.0, id="iceberg pending input older than the window"),
    pytest.param("studio.movies_history",
                 world(sink_ages={"studio.movies_history": 2 * 3600 * S},
                       connectors=[dead(STUDIO_CDC)]),
                 False, "stuck", f"connector {STUDIO_CDC}", "is not running", 7200.0,
                 id="iceberg upstream connector dead"),
    pytest.param("content.title_catalog",
                 world(sink_ages={"content.title_catalog": 2 * 3600 * S}, readers=[
                     reader("content.localized_titles", MOVIES_T, False)]),
                 False, "stuck", TITLES_HOP, f"{TITLES_HOP} is not running", 7200.0,
                 id="iceberg upstream processor not running"),
    # postgres sink (SLO 15 min), newest from its input and what it has not consumed
    pytest.param("content.localized_titles_serving", world({"content.localized_titles": MIN}),
                 True, "fresh", None, "60 s old", 60.0,
                 id="postgres: input's newest when nothing pending"),
    pytest.param("content.localized_titles_serving",
                 world({"content.localized_titles": MIN}, readers=[
                     reader("content.localized_titles_serving", TITLES_T, pending_age_ms=5 * MIN)]),
                 True, "fresh", None, "5.0 min old", 300.0,
                 id="postgres: its oldest pending message bounds what it wrote"),
    pytest.param("content.localized_titles_serving",
                 world({"content.localized_titles": MIN}, readers=[
                     reader("content.localized_titles_serving", TITLES_T,
                            pending_age_ms=20 * MIN)]),
                 False, "stuck", SERVING_HOP,
                 f"has not consumed {TITLES_T} messages waiting for 20.0 min", 1200.0,
                 id="postgres: pending older than the window"),
    pytest.param("content.localized_titles_serving", world({"content.localized_titles": 30 * MIN}),
                 True, "idle", None, "nothing waits", 1800.0, id="postgres: idle input"),
    pytest.param("content.localized_titles_serving",
                 world({"content.localized_titles": 30 * MIN}, readers=[
                     reader("content.localized_titles_serving", TITLES_T, False)]),
                 False, "stuck", SERVING_HOP, f"{SERVING_HOP} is not running", 1800.0,
                 id="postgres: job not running"),
    pytest.param("content.localized_titles_serving",
                 world({"content.localized_titles": None}, readers=[
                     reader("content.localized_titles_serving", TITLES_T, pending_age_ms=MIN)]),
                 True, "idle", None, "no event yet", None, id="postgres: input has no event"),
]  # fmt: skip
OBJECTIVE_S = {
    "studio.movie_catalog": 600.0,
    "content.localized_titles": 900.0,
    "studio.movies_history": 3600.0,
    "content.title_catalog": 3600.0,
    "content.localized_titles_serving": 900.0,
}


@pytest.mark.parametrize(
    ("pid", "obs", "passed", "state", "hop", "words", "measured"), PIPELINE_FRESHNESS
)
def test_pipeline_freshness(
    pid: str, obs: Observed, passed: bool, state: str, hop: str | None, words: Any, measured: Any
) -> None:
    assert_outcome(outcome(pid, "freshness", obs), passed, state, hop, words, measured,
                   OBJECTIVE_S[pid])  # fmt: skip


def test_freshness_of_a_missing_reader_is_stuck() -> None:
    obs = world(CATALOG_OLD)
    obs.readers[PRODUCTIONS_T].clear()
    o = outcome("studio.movie_catalog", "freshness", obs)
    assert (o.passed, o.state, o.hop) == (False, "stuck", CATALOG_HOP)


# -- lag ------------------------------------------------------------------------------------

END = {0: 100, 1: 100, 2: 100}
ALL = {0: 100, 1: 100, 2: 100}


def movies_readers(
    catalog: dict[int, int], titles: dict[int, int], history: dict[int, int]
) -> list[Reader]:
    return [
        reader("studio.movie_catalog", MOVIES_T, committed=catalog),
        reader("content.localized_titles", MOVIES_T, committed=titles),
        reader("studio.movies_history", MOVIES_T, committed=history),
    ]


LAG = [
    pytest.param("studio.movies",
                 world(ends={MOVIES_T: END},
                       readers=movies_readers(ALL, {0: 50, 1: 100, 2: 100},
                                              {0: 90, 1: 95, 2: 100})),
                 True, "ok", None, f"{TITLES_HOP} is 50 messages behind {MOVIES_T}", 50, 10_000,
                 id="worst consumer named"),
    pytest.param("studio.movies",
                 world(ends={MOVIES_T: {0: 20_000, 1: 0, 2: 0}},
                       readers=movies_readers({0: 20_000}, {0: 20_000}, {0: 5_000})),
                 False, "over", HISTORY_HOP, f"{HISTORY_HOP} is 15000 messages behind", 15_000,
                 10_000, id="over max_lag"),
    pytest.param("studio.movies",
                 world(ends={MOVIES_T: {0: 10_000}}, readers=movies_readers({}, {0: 10_000},
                                                                            {0: 10_000})),
                 True, "ok", None, f"{CATALOG_HOP} is 10000 messages behind", 10_000, 10_000,
                 id="exactly max_lag, committed nothing"),
    pytest.param("content.localized_titles", world(ends={TITLES_T: {0: 7}}),
                 True, "ok", None, "is 7 messages behind", 7, 20_000,
                 id="a processor's consumers are its sinks"),
    pytest.param(with_slo("content.title_catalog", max_lag=100),
                 world(ends={TITLES_T: {0: 1_000}}, readers=[
                     reader("content.title_catalog", TITLES_T, committed={0: 950}),
                     reader("content.localized_titles_serving", TITLES_T, committed={})]),
                 True, "ok", None, f"{TITLE_CATALOG_HOP} is 50 messages behind {TITLES_T}", 50,
                 100, id="a sink's lag is its own reader's"),
    pytest.param(with_slo("content.localized_titles_serving", max_lag=100),
                 world(ends={TITLES_T: {0: 1_000}}, readers=[
                     reader("content.title_catalog", TITLES_T, committed={0: 1_000}),
                     reader("content.localized_titles_serving", TITLES_T, committed={0: 800})]),
                 False, "over", SERVING_HOP, "200 messages behind", 200, 100,
                 id="postgres sink over"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("product", "obs", "passed", "state", "hop", "words", "measured", "objective"), LAG
)
def test_lag(
    product: Any,
    obs: Observed,
    passed: bool,
    state: str,
    hop: str | None,
    words: str,
    measured: int,
    objective: int,
) -> None:
    o = outcome(product, "lag", obs)
    assert_outcome(o, passed, state, hop, words, measured, objective)
    assert o.unit == "messages"


def test_lag_without_consumers_passes() -> None:
    obs = world(ends={MOVIES_T: {0: 50_000}})
    obs.readers[MOVIES_T].clear()
    o = outcome("studio.movies", "lag", obs)
    assert_outcome(o, True, "ok", None, "no consumer", 0, 10_000)
    sink = with_slo("content.title_catalog", max_lag=1)
    obs = world(ends={TITLES_T: {0: 50_000}})
    obs.readers[TITLES_T][:] = [r for r in obs.readers[TITLES_T] if r.product_id != sink.id]
    assert_outcome(outcome(sink, "lag", obs), True, "ok", None, "no consumer", 0, 1)


def test_lag_details_list_every_consumer_and_the_slot_lag() -> None:
    obs = world(
        ends={MOVIES_T: {0: 10}},
        readers=movies_readers({0: 10}, {0: 4}, {}),
        connectors=[Connector(STUDIO_CDC, status(slot_lag_bytes=123_456), True)],
    )
    assert outcome("studio.movies", "lag", obs).details == {
        "consumers": {CATALOG_HOP: 0, TITLES_HOP: 6, HISTORY_HOP: 10},
        "slot_lag_bytes": 123_456,
    }
    processor = outcome("content.localized_titles", "lag", world())
    assert "slot_lag_bytes" not in processor.details


@pytest.mark.parametrize(
    ("committed", "end", "lag"),
    [
        ({}, {0: 5, 1: 7}, 12),
        ({0: 5}, {0: 5, 1: 7}, 7),
        ({0: 2, 1: 3}, {0: 5, 1: 7}, 7),
        ({0: 10}, {0: 5}, 0),  # topic recreated: never negative
        ({0: 1, 9: 100}, {0: 5}, 4),  # partitions the topic no longer has are ignored
        ({0: 3}, {}, 0),
    ],
)
def test_reader_lag(committed: dict[int, int], end: dict[int, int], lag: int) -> None:
    assert Reader("x", "h", "t", committed, True).lag(end) == lag


# -- dead letters ---------------------------------------------------------------------------

DLQ = "studio.movie_catalog.dlq"
DEAD_LETTERS = [
    pytest.param(None, 3, False, "over", CATALOG_HOP, f"3 new dead letters on {DLQ}", 3,
                 id="first evaluation counts all"),
    pytest.param(None, 0, True, "ok", None, f"no new dead letter on {DLQ}", 0,
                 id="first evaluation, none"),
    pytest.param(3, 3, True, "ok", None, "no new dead letter", 0, id="unchanged"),
    pytest.param(3, 5, False, "over", CATALOG_HOP, "2 new dead letters", 2, id="more"),
    pytest.param(10, 4, False, "over", CATALOG_HOP, "4 new dead letters", 4,
                 id="topic recreated: counts the total"),
    pytest.param(10, 0, True, "ok", None, "no new dead letter", 0, id="topic recreated, empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("previous", "total", "passed", "state", "hop", "words", "measured"), DEAD_LETTERS
)
def test_dead_letters(
    previous: int | None,
    total: int,
    passed: bool,
    state: str,
    hop: str | None,
    words: str,
    measured: int,
) -> None:
    obs = world(dead_letters={DLQ: total, "content.localized_titles.dlq": 99})
    o = outcome("studio.movie_catalog", "dead_letters", obs, previous)
    assert_outcome(o, passed, state, hop, words, measured, 0)
    assert o.details == {"dead_letters_total": total, "topic": DLQ}


def test_dead_letters_of_sinks() -> None:
    obs = world(dead_letters={"content.localized_titles_serving.dlq": 2})
    o = outcome("content.localized_titles_serving", "dead_letters", obs)
    assert_outcome(o, False, "over", SERVING_HOP, "2 new dead letters", 2, 0)
    sink = BY_ID["content.title_catalog"]
    assert sink.sink is not None
    dlq_sink = dataclasses.replace(sink, sink=dataclasses.replace(sink.sink, on_bad_record="dlq"))
    obs = world(dead_letters={"content.title_catalog.dlq": 1})
    o = outcome(dlq_sink, "dead_letters", obs, previous=0)
    assert_outcome(o, False, "over", TITLE_CATALOG_HOP, "1 new dead letters", 1, 0)


def test_a_missing_dead_letter_topic_counts_as_empty() -> None:
    o = outcome("studio.movie_catalog", "dead_letters", world(), previous=4)
    assert (o.passed, o.measured, o.details["dead_letters_total"]) == (True, 0, 0)


# -- latency --------------------------------------------------------------------------------

MOVIES_LATENCY = with_slo("studio.movies", latency_p99=timedelta(milliseconds=150))
LATENCY_1S = with_slo("studio.movies", latency_p99=timedelta(seconds=1))


@pytest.mark.parametrize(
    ("sample", "p99", "p50"),
    [
        (tuple(range(1, 101)), 99, 51),  # nearest rank: ceil(0.99 * 100) = 99th value
        (tuple(range(100, 0, -1)), 99, 51),  # unsorted input
        (tuple(range(1, 201)), 198, 101),
        (tuple(range(1, 11)), 10, 6),  # ceil(9.9) = 10th of 10
        ((7,), 7, 7),
        ((5, 1), 5, 5),
    ],
)
def test_latency_p99_is_the_nearest_rank(sample: tuple[int, ...], p99: int, p50: int) -> None:
    o = outcome(LATENCY_1S, "latency_p99", world(latencies={MOVIES_T: sample}))
    assert_outcome(o, True, "ok", None, f"p99 commit -> publish {p99} ms over the newest "
                   f"{len(sample)} changes", p99, 1000.0)  # fmt: skip
    assert o.unit == "ms"
    assert o.details == {"sample_size": len(sample), "p50_ms": p50}


@pytest.mark.parametrize(
    ("sample", "passed", "state", "hop"),
    [
        ((150,) * 100, True, "ok", None),
        ((1,) * 98 + (151, 151), False, "over", f"connector {STUDIO_CDC}"),
        ((1,) * 99 + (10_000,), True, "ok", None),  # one outlier in 100 is not the p99
    ],
)
def test_latency_p99_against_the_objective(
    sample: tuple[int, ...], passed: bool, state: str, hop: str | None
) -> None:
    o = outcome(MOVIES_LATENCY, "latency_p99", world(latencies={MOVIES_T: sample}))
    assert (o.passed, o.state, o.hop) == (passed, state, hop)


def test_latency_without_a_sample_is_idle() -> None:
    o = outcome(MOVIES_LATENCY, "latency_p99", world())
    assert_outcome(o, True, "idle", None, "nothing to measure", None, 150.0)


# -- unreachable systems ----------------------------------------------------------------------

ALL_CHECKS = [
    ("studio.movies", "freshness"),
    ("studio.movies", "lag"),
    ("studio.movie_catalog", "freshness"),
    ("studio.movie_catalog", "dead_letters"),
    ("content.localized_titles", "lag"),
    ("studio.movies_history", "freshness"),
    ("content.title_catalog", "freshness"),
    ("content.localized_titles_serving", "freshness"),
    ("content.localized_titles_serving", "dead_letters"),
]


@pytest.mark.parametrize(("pid", "check"), ALL_CHECKS)
def test_kafka_unreachable_fails_every_kafka_check(pid: str, check: str) -> None:
    o = outcome(pid, check, world(errors={"kafka": "broker down"}, dead_letters={DLQ: 0}))
    assert (o.passed, o.state, o.hop) == (False, "could not evaluate", "kafka")
    assert "could not evaluate" in o.summary and "broker down" in o.summary
    assert (o.measured, o.objective) == (None, None)


def test_kafka_unreachable_fails_latency() -> None:
    o = outcome(MOVIES_LATENCY, "latency_p99", world(errors={"kafka": "broker down"}))
    assert (o.passed, o.state) == (False, "could not evaluate")
    assert "broker down" in o.summary


@pytest.mark.parametrize(
    ("system", "pid", "check", "unreachable"),
    [
        ("flink", "studio.movie_catalog", "freshness", True),
        ("flink", "content.localized_titles", "lag", True),
        ("flink", "content.title_catalog", "freshness", True),  # upstream processor
        ("flink", "content.localized_titles_serving", "freshness", True),
        ("flink", "studio.movies", "freshness", False),
        ("flink", "studio.movies_history", "freshness", False),
        ("flink", "studio.movie_catalog", "dead_letters", False),
        ("cdc", "studio.movies", "freshness", True),
        ("cdc", "studio.movie_catalog", "freshness", True),  # upstream connector
        ("cdc", "studio.movie_catalog", "schema", False),
        ("iceberg", "studio.movies_history", "freshness", True),
        ("iceberg", "studio.movies", "freshness", False),
        ("iceberg", "content.localized_titles_serving", "freshness", False),
        ("registry", "studio.movies", "schema", True),
        ("registry", "studio.movies", "freshness", False),
        ("kafka", "studio.movies", "schema", False),  # the schema check reads the registry only
    ],
)
def test_which_checks_a_system_error_affects(
    system: str, pid: str, check: str, unreachable: bool
) -> None:
    o = outcome(pid, check, world(errors={system: "timed out"}))
    assert (o.state == "could not evaluate") is unreachable, o
    if unreachable:
        assert (o.passed, o.hop) == (False, system)
        assert f"{system} did not answer (timed out)" in o.summary


def test_kafka_is_named_before_other_systems() -> None:
    o = outcome("studio.movie_catalog", "freshness", world(errors={"flink": "a", "kafka": "b"}))
    assert (o.hop, o.summary) == ("kafka", "could not evaluate: kafka did not answer (b)")


# -- which checks, where dead letters go, hops ------------------------------------------------

UP = "upstream_schema"  # every consumer of another product


@pytest.mark.parametrize(
    ("product", "checks"),
    [
        ("studio.movies", ("freshness", "lag", "schema")),
        ("studio.productions", ("freshness", "lag", "schema")),
        ("studio.movie_catalog", ("freshness", "dead_letters", "schema", UP)),
        ("studio.movies_history", ("freshness", UP)),
        ("content.artwork", ("freshness", "schema")),
        ("content.localized_titles", ("freshness", "lag", "dead_letters", "schema", UP)),
        ("content.title_catalog", ("freshness", UP)),
        ("content.localized_titles_serving", ("freshness", "dead_letters", UP)),
        (MOVIES_LATENCY, ("latency_p99", "schema")),
        (with_slo("studio.movie_catalog"), ("dead_letters", "schema", UP)),
        (with_slo("content.title_catalog"), (UP,)),
        (with_dead_letters("content.title_catalog"), ("freshness", "dead_letters", UP)),
    ],
)
def test_checks_for(product: Any, checks: tuple[str, ...]) -> None:
    p = BY_ID[product] if isinstance(product, str) else product
    assert sorted(checks_for(p)) == sorted(checks)
    assert [o.check for o in evaluate([p], {**BY_ID, p.id: p}, world(), {})[p.id]] == list(
        checks_for(p)
    )


@pytest.mark.parametrize(
    ("pid", "dlq", "hop"),
    [
        ("studio.movies", None, f"connector {STUDIO_CDC}"),
        ("content.artwork", None, f"connector {CONTENT_CDC}"),
        ("studio.movie_catalog", DLQ, CATALOG_HOP),
        ("content.localized_titles", "content.localized_titles.dlq", TITLES_HOP),
        ("studio.movies_history", None, HISTORY_HOP),
        ("content.title_catalog", None, TITLE_CATALOG_HOP),
        ("content.localized_titles_serving", "content.localized_titles_serving.dlq", SERVING_HOP),
    ],
)
def test_dlq_topic_and_hop(pid: str, dlq: str | None, hop: str) -> None:
    assert (dlq_topic(BY_ID[pid]), hop_of(BY_ID[pid])) == (dlq, hop)


def test_evaluate_covers_exactly_the_products_asked_for() -> None:
    asked = [BY_ID["studio.movies"], BY_ID["content.localized_titles_serving"]]
    got = evaluate(asked, BY_ID, world(), {})
    assert list(got) == ["studio.movies", "content.localized_titles_serving"]


def test_lag_is_could_not_evaluate_when_a_sinks_offsets_cannot_be_read() -> None:
    """An unreadable Iceberg catalog leaves its sinks' committed offsets unknown, not zero."""
    lag = outcome("studio.movies", "lag", world(errors={"iceberg": "catalog locked"}))
    assert (lag.passed, lag.state) == (False, "could not evaluate")
    assert "iceberg" in lag.summary and "catalog locked" in lag.summary


def test_unreadable_group_offsets_only_affect_what_reads_them() -> None:
    """A coordinator that does not answer leaves the Flink jobs' offsets unknown: the lag of
    what they read and the processors' freshness cannot be judged; a CDC product's freshness
    (connector and topic only) still can."""
    obs = world(errors={GROUPS: "NOT_COORDINATOR"})
    assert outcome("studio.movies", "lag", obs).state == "could not evaluate"
    assert outcome("studio.movie_catalog", "freshness", obs).state == "could not evaluate"
    assert outcome("studio.movies", "freshness", obs).state == "fresh"


# -- upstream schema ---------------------------------------------------------------------------

PAUSE = Pause(
    product="studio.movie_catalog",
    input="studio.movies",
    fields=("status",),
    change="drop column studio.movies.status",
    owners=("team:studio-eng",),
    declared_in="mesh_assets/domains/studio/products.yaml",
    schema_id=7,
    savepoint="file:/tmp/sp-1",
)


def test_upstream_schema_passes_while_nothing_is_paused() -> None:
    o = outcome("studio.movie_catalog", "upstream_schema", world())
    assert (o.passed, o.state, o.hop) == (True, "ok", None)


def test_a_paused_consumer_fails_naming_field_change_consumer_and_owners() -> None:
    obs = dataclasses.replace(world(), paused={PAUSE.product: PAUSE})
    o = outcome("studio.movie_catalog", "upstream_schema", obs)
    assert (o.passed, o.state) == (False, "paused")
    assert o.summary.startswith(
        "drop column studio.movies.status breaks studio.movie_catalog (consumes status; "
        "owners team:studio-eng): its pipeline is paused (stopped with savepoint file:/tmp/sp-1)"
    )
    assert o.hop == "processor studio.movie_catalog (flink job mesh-studio-movie_catalog)"
    assert o.details["fields"] == "status" and o.details["consumer"] == "studio.movie_catalog"
    # another product is not concerned by it
    assert outcome("content.localized_titles", "upstream_schema", obs).passed


def test_upstream_schema_cannot_pass_without_the_pause_records() -> None:
    obs = world(errors={"platform state": "PermissionError: paused/"})
    o = outcome("studio.movie_catalog", "upstream_schema", obs)
    assert (o.passed, o.state) == (False, "could not evaluate")
