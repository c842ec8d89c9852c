"""``plan`` over the demo mesh: additions, changes, removals, drift and refusals, as tables."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from datamesh.control.acls import Grant, desired_acls
from datamesh.control.actions import Action
from datamesh.control.connectors import ObservedConnector
from datamesh.control.desired import desired, pipeline_order
from datamesh.control.inventory import Applied
from datamesh.control.observed import (
    Observed,
    ObservedJob,
    ObservedSubject,
    ObservedTable,
)
from datamesh.control.plan import plan
from datamesh.specs import DataProduct, load_products
from datamesh.topic_plan import ObservedTopic, desired_configs
from mesh_assets import DOMAINS_DIR

DEMO = list(load_products(DOMAINS_DIR))
BY_ID = {p.id: p for p in DEMO}


def in_sync(products: list[DataProduct]) -> Observed:
    """What a mesh that applied ``products`` exactly looks like."""
    by_id = {p.id: p for p in products}
    topics: dict[str, ObservedTopic] = {}
    subjects: dict[str, ObservedSubject] = {}
    jobs: dict[str, ObservedJob] = {}
    connectors: dict[str, set[str]] = {}
    tables: dict[str, ObservedTable] = {}
    applied: dict[str, Applied] = {}
    for p in products:
        d = desired(p, by_id)
        for name, s in ((d.topic, d.topic_settings), (d.dlq, d.dlq_settings)):
            if name and s:
                topics[name] = ObservedTopic(
                    name, s.partitions, s.replication_factor, desired_configs(s)
                )
        for sub in d.subjects:
            subjects[sub.subject] = ObservedSubject(1, sub.schema or _envelope(p), sub.level)
        if d.job:
            jobs[d.job] = ObservedJob("RUNNING")
        if d.connector and d.source_table:
            connectors.setdefault(d.connector, set()).add(d.source_table)
        if d.sink_table and p.kind == "iceberg_sink":
            from datamesh.specs import sink_layout

            schema = sink_layout.effective_schema(p, by_id) or {}
            parts = tuple(p.sink.partition_by) if p.sink else ()
            tables[d.sink_table] = ObservedTable(tuple(f["name"] for f in schema["fields"]), parts)
        applied[p.id] = Applied.of(d)
    return Observed(
        topics=topics,
        subjects=subjects,
        jobs=jobs,
        connectors={k: following(v) for k, v in connectors.items()},
        sink_tables=tables,
        applied=applied,
    )


def following(tables: set[str] | tuple[str, ...], running: bool = True) -> ObservedConnector:
    """A connector whose publication holds and whose process captures ``tables``."""
    return ObservedConnector(
        publication=frozenset(tables),
        slot=True,
        slot_recorded=True,
        slot_lost=False,
        running=running,
        captured=frozenset(tables),
        state="streaming" if running else "stopped",
        error="",
    )


def _envelope(p: DataProduct) -> dict[str, Any]:
    row = p.value_schema or {"type": "record", "name": "Value", "fields": []}
    return {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", row["name"]], "default": None},
        ],
    }


SYNC = in_sync(DEMO)


def lines(actions: list[Action]) -> list[str]:
    return [f"{a.verb} {a.resource} {a.name}" for a in actions]


def test_a_mesh_that_matches_its_declarations_plans_nothing() -> None:
    assert plan(DEMO, SYNC) == []


def test_an_empty_mesh_is_created_in_pipeline_order() -> None:
    actions = plan(DEMO, Observed())
    order = [a.product for a in actions]
    ids = [p.id for p in pipeline_order(DEMO)]
    assert sorted(set(order), key=order.index) == ids  # every product, inputs first
    topics = {a.product: i for i, a in enumerate(actions) if a.resource == "topic"}
    for p in DEMO:  # every input's topic exists before its consumer's first action
        for i in p.inputs:
            assert topics[i] < order.index(p.id)
    assert lines([a for a in actions if a.product == "studio.movie_catalog"]) == [
        "update subject studio.movie_catalog-key",
        "create subject studio.movie_catalog-key",
        "update subject studio.movie_catalog-value",
        "create subject studio.movie_catalog-value",
        "create topic studio.movie_catalog",
        "create dlq_topic studio.movie_catalog.dlq",
        "create flink_job mesh-studio-movie_catalog",
    ]
    assert lines([a for a in actions if a.product == "studio.movies"]) == [
        "update subject studio.public.movies-key",
        "update subject studio.public.movies-value",
        "create topic studio.public.movies",
        "create connector studio-studio-cdc",
    ]
    # a connector starts after every topic of its database exists (it would create a missing
    # one with its own defaults)
    studio = [i for i, a in enumerate(actions) if a.name == "studio-studio-cdc"]
    studio_topics = [i for i, a in enumerate(actions) if a.name.startswith("studio.public.")]
    assert min(studio) > max(studio_topics)
    assert all(a.changes for a in actions)


def _without(obs: Observed, **drop: str) -> Observed:
    kw: dict[str, Any] = {}
    for field, key in drop.items():
        kw[field] = {k: v for k, v in getattr(obs, field).items() if k != key}
    return replace(obs, **kw)


CASES: list[tuple[str, Observed, list[str]]] = [
    (
        "topic deleted out of band",
        _without(SYNC, topics="studio.public.movies"),
        ["create topic studio.public.movies"],
    ),
    (
        "dead-letter topic missing",
        _without(SYNC, topics="studio.movie_catalog.dlq"),
        ["create dlq_topic studio.movie_catalog.dlq"],
    ),
    (
        "job cancelled",
        replace(SYNC, jobs={**SYNC.jobs, "mesh-studio-movie_catalog": ObservedJob("CANCELED")}),
        ["create flink_job mesh-studio-movie_catalog"],
    ),
    (
        "connector stopped",
        replace(
            SYNC,
            connectors={
                **SYNC.connectors,
                "studio-studio-cdc": following(
                    ("public.movies", "public.productions", "public.talent"), False
                ),
            },
        ),
        ["create connector studio-studio-cdc"],
    ),
    (
        "table not captured by the running connector",
        replace(
            SYNC,
            connectors={
                **SYNC.connectors,
                "studio-studio-cdc": following(("public.movies", "public.talent")),
            },
        ),
        ["update connector studio-studio-cdc"],
    ),
    (
        "table captured that nobody declares",
        replace(
            SYNC,
            connectors={
                **SYNC.connectors,
                "studio-studio-cdc": following(
                    ("public.movies", "public.productions", "public.talent", "public.crew")
                ),
            },
        ),
        ["update connector studio-studio-cdc"],
    ),
    (
        "subject level changed out of band",
        replace(
            SYNC,
            subjects={
                **SYNC.subjects,
                "studio.movie_catalog-value": replace(
                    SYNC.subjects["studio.movie_catalog-value"], level="NONE"
                ),
            },
        ),
        ["update subject studio.movie_catalog-value"],
    ),
    (
        "iceberg table missing",
        _without(SYNC, sink_tables="studio.movies_history"),
        ["create sink_table studio.movies_history"],
    ),
    (
        "the controller never applied a running job",
        _without(SYNC, applied="content.localized_titles_serving"),
        ["update flink_job mesh-content-localized_titles_serving"],
    ),
]


@pytest.mark.parametrize(("case", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_difference_plans_one_action(
    case: str, observed: Observed, expected: list[str]
) -> None:
    assert lines(plan(DEMO, observed)) == expected


@pytest.mark.parametrize(
    ("setting", "actual", "gate"),
    [("retention.ms", "1000", "repair"), ("cleanup.policy", "delete", "repair")],
)
def test_topic_config_drift_is_reported_and_repaired_only_on_request(
    setting: str, actual: str, gate: str
) -> None:
    t = SYNC.topics["studio.public.movies"]
    observed = replace(
        SYNC,
        topics={**SYNC.topics, t.name: replace(t, configs={**t.configs, setting: actual})},
    )
    (action,) = plan(DEMO, observed)
    assert (action.verb, action.gate, action.name) == ("drift", gate, t.name)
    assert action.params == {"configs": {setting: t.configs[setting]}}
    assert not action.changes


def test_an_iceberg_table_partitioned_otherwise_is_drift_never_repaired() -> None:
    t = SYNC.sink_tables["studio.movies_history"]
    observed = replace(
        SYNC, sink_tables={**SYNC.sink_tables, "studio.movies_history": replace(t, partition_by=())}
    )
    (action,) = plan(DEMO, observed)
    assert (action.verb, action.gate, action.resource) == ("drift", "", "sink_table")
    assert "partitioned by (nothing), declared (day(_event_time))" in action.detail


def test_partition_drift_is_never_repaired() -> None:
    t = SYNC.topics["studio.public.movies"]
    observed = replace(
        SYNC, topics={**SYNC.topics, t.name: replace(t, partitions=t.partitions + 2)}
    )
    (action,) = plan(DEMO, observed)
    assert (action.verb, action.gate, action.params) == ("drift", "", {})
    assert "partitions" in action.detail and "edit the declaration" in action.detail


def _with_schema(pid: str, schema: dict[str, Any]) -> list[DataProduct]:
    return [replace(p, value_schema=schema) if p.id == pid else p for p in DEMO]


def _fields(p: DataProduct) -> list[dict[str, Any]]:
    return list((p.value_schema or {})["fields"])


def test_a_changed_processor_schema_is_registered_and_its_job_upgraded() -> None:
    mc = BY_ID["studio.movie_catalog"]
    extra = {"name": "extra", "type": ["null", "string"], "default": None}
    new = {**(mc.value_schema or {}), "fields": [*_fields(mc), extra]}
    actions = plan(_with_schema(mc.id, new), SYNC)
    assert lines(actions) == [
        "update subject studio.movie_catalog-value",
        "update flink_job mesh-studio-movie_catalog",
    ]
    assert actions[0].params["schema"] == new


def test_a_changed_cdc_schema_adds_the_column_to_its_iceberg_sink() -> None:
    movies = BY_ID["studio.movies"]
    rating = {"name": "rating", "type": ["null", "int"], "default": None}
    new = {**(movies.value_schema or {}), "fields": [*_fields(movies), rating]}
    actions = [a for a in plan(_with_schema(movies.id, new), SYNC) if a.verb != "drift"]
    assert [(line, a.params) for line, a in zip(lines(actions), actions, strict=True)] == [
        ("update flink_job mesh-content-localized_titles", {}),
        ("update flink_job mesh-studio-movie_catalog", {}),
        ("update sink_table studio.movies_history", {"add": ["rating"]}),
    ]


def test_a_schema_the_registry_refuses_is_a_refusal_with_its_reasons() -> None:
    mc = BY_ID["studio.movie_catalog"]
    new = {**(mc.value_schema or {}), "fields": _fields(mc)[:-1]}
    observed = replace(SYNC, refusals={"studio.movie_catalog-value": ("field x has no default",)})
    refusal = [a for a in plan(_with_schema(mc.id, new), observed) if a.verb == "refuse"]
    assert [r.name for r in refusal] == ["studio.movie_catalog-value"]
    assert "field x has no default" in refusal[0].detail and refusal[0].breaks


def test_a_dropped_cdc_column_names_the_consumer_it_breaks_and_its_owner() -> None:
    movies = BY_ID["studio.movies"]
    consumer = replace(BY_ID["studio.movie_catalog"], consumes={"studio.movies": ("status",)})
    dropped = {
        **(movies.value_schema or {}),
        "fields": [f for f in _fields(movies) if f["name"] != "status"],
    }
    products = [
        consumer
        if p.id == consumer.id
        else replace(p, value_schema=dropped)
        if p.id == movies.id
        else p
        for p in DEMO
    ]
    drift = [a for a in plan(products, SYNC) if a.product == movies.id]
    assert [a.verb for a in drift] == ["drift"]
    (action,) = drift
    broken = {a.product: a for a in action.impact if a.effect == "breaks"}
    assert broken["studio.movie_catalog"].fields == ("status",)
    assert broken["studio.movie_catalog"].owners == consumer.owners
    assert "drop column studio.movies.status" in action.detail
    assert "breaks studio.movie_catalog (consumes status; owner" in action.describe()
    assert action.breaks


def test_an_added_column_touches_no_consumer() -> None:
    movies = BY_ID["studio.movies"]
    added = {
        **(movies.value_schema or {}),
        "fields": [*_fields(movies), {"name": "rating", "type": ["null", "int"], "default": None}],
    }
    (action,) = [a for a in plan(_with_schema(movies.id, added), SYNC) if a.product == movies.id]
    assert {a.effect for a in action.impact} == {"updates"}
    assert not action.breaks


def test_a_removed_declaration_is_retired_consumers_first_with_deletions_gated() -> None:
    gone = {"studio.movies_history"}
    actions = plan([p for p in DEMO if p.id not in gone], SYNC)
    assert lines(actions) == [
        "delete sink_table studio.movies_history",
        "delete product studio.movies_history",
    ]
    assert actions[0].gate == "allow_delete"


def test_a_domain_not_declared_here_is_left_alone() -> None:
    studio_only = [p for p in DEMO if p.domain == "studio"]
    assert plan(studio_only, in_sync(DEMO)) == []  # content's records are not retired


def test_a_half_done_retirement_plans_only_what_remains() -> None:
    observed = _without(SYNC, jobs="mesh-studio-movie_catalog")
    observed = replace(
        observed,
        subjects={
            k: v for k, v in observed.subjects.items() if not k.startswith("studio.movie_catalog-")
        },
    )
    products = [p for p in DEMO if p.id != "studio.movie_catalog"]
    assert lines(plan(products, observed)) == [
        "delete dlq_topic studio.movie_catalog.dlq",
        "delete topic studio.movie_catalog",
        "delete product studio.movie_catalog",
    ]


def test_retiring_a_product_that_is_still_read_is_refused_naming_its_readers() -> None:
    products = [replace(p, retired=True) if p.id == "studio.productions" else p for p in DEMO]
    (action,) = plan(products, SYNC)
    assert (action.verb, action.resource) == ("refuse", "product")
    assert "studio.movie_catalog" in action.detail
    assert action.breaks


def test_retiring_a_processor_tears_down_job_subjects_and_topics() -> None:
    retire = {
        "content.localized_titles",
        "content.title_catalog",
        "content.localized_titles_serving",
    }
    products = [replace(p, retired=True) if p.id in retire else p for p in DEMO]
    actions = plan(products, SYNC)
    by_product = [a.product for a in actions]
    # consumers before their input
    assert by_product.index("content.title_catalog") < by_product.index("content.localized_titles")
    lt = [
        f"{a.verb} {a.resource} {a.gate}".strip()
        for a in actions
        if a.product == "content.localized_titles"
    ]
    assert lt == [
        "delete flink_job",
        "delete subject",
        "delete subject",
        "delete dlq_topic allow_delete",
        "delete topic allow_delete",
        "delete product",
    ]


def test_with_an_authorizer_each_reader_is_granted_exactly_its_inputs() -> None:
    missing = plan(DEMO, replace(SYNC, acls=frozenset()))
    assert {a.resource for a in missing} == {"acl"} and all(a.verb == "create" for a in missing)
    catalog = [a.name for a in missing if a.product == "studio.movie_catalog"]
    assert catalog == sorted(catalog) and len(catalog) == 3  # two topics and its group
    assert all("User:studio.movie_catalog" in n for n in catalog)
    readers = {p.id for p in DEMO if p.kind != "cdc"}
    assert {a.product for a in missing} == readers
    granted = frozenset(desired_acls(DEMO))
    assert plan(DEMO, replace(SYNC, acls=granted)) == []
    extra = Grant("User:studio.movie_catalog", "TOPIC", "content.localized_titles")
    (drift,) = plan(DEMO, replace(SYNC, acls=granted | {extra}))
    assert (drift.verb, drift.gate, drift.product) == ("drift", "repair", "studio.movie_catalog")


def test_an_unreachable_system_plans_nothing_for_its_resources() -> None:
    observed = replace(
        Observed(),
        unreachable={
            "kafka": "down",
            "registry": "down",
            "flink": "down",
            "connectors": "x",
            "iceberg": "x",
        },
    )
    assert plan(DEMO, observed) == []


def test_retiring_the_last_table_of_a_connector_retires_the_connector_behind_allow_delete() -> None:
    products = [replace(p, retired=True) if p.domain == "content" else p for p in DEMO]
    observed = replace(SYNC, orphans=frozenset({"content-content-cdc"}))
    (stop,) = [a for a in plan(products, observed) if a.resource == "connector"]
    assert (stop.verb, stop.name, stop.gate, stop.product) == (
        "delete",
        "content-content-cdc",
        "allow_delete",
        "content.artwork",
    )
    assert stop.params == {"domain": "content", "database": "content"}
    assert "replication slot" in stop.detail


def test_a_declared_cdc_schema_is_checked_against_its_table() -> None:
    movies = BY_ID["studio.movies"]
    columns = tuple(movies.field_names())
    ok = replace(SYNC, table_columns={movies.id: columns})
    assert plan(DEMO, ok) == []
    gone = replace(SYNC, table_columns={movies.id: tuple(c for c in columns if c != "status")})
    (action,) = plan(DEMO, gone)
    assert (action.verb, action.product) == ("drift", movies.id)
    assert (
        "the declared schema has status, which table studio.public.movies has not" in action.detail
    )
    broken = {a.product for a in action.impact if a.effect == "breaks"}
    assert "studio.movie_catalog" in broken  # it consumes status
    (missing,) = plan(DEMO, replace(SYNC, table_columns={movies.id: ()}))
    assert "table studio.public.movies does not exist" in missing.detail
