"""The Dagster surface: definitions load, and a reviewed snapshot of every asset spec.

Regenerate the snapshot after an intended change with ``UPDATE_SNAPSHOTS=1 make test-unit`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_specs.json"


def _defs() -> dg.Definitions:
    import definitions

    return definitions.defs


def _spec_summary(spec: dg.AssetSpec, checks: list[dg.AssetCheckSpec]) -> dict[str, Any]:
    schema = spec.metadata.get("dagster/column_schema")
    return {
        "description": spec.description,
        "group": spec.group_name,
        "owners": list(spec.owners),
        "tags": dict(sorted(spec.tags.items())),
        "kinds": sorted(spec.kinds),
        "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
        "columns": [f"{c.name}: {c.type}" for c in schema.columns] if schema else None,
        "checks": sorted(f"{c.name}{' (blocking)' if c.blocking else ''}" for c in checks),
        "topic": spec.metadata.get("topic"),
    }


def snapshot() -> dict[str, Any]:
    repo = _defs().get_repository_def()
    checks: dict[dg.AssetKey, list[dg.AssetCheckSpec]] = {}
    for check_key, check_def in repo.asset_checks_defs_by_key.items():
        checks.setdefault(check_key.asset_key, []).append(
            check_def.get_spec_for_check_key(check_key)
        )
    return {
        key.to_user_string(): _spec_summary(assets.specs_by_key[key], checks.get(key, []))
        for key, assets in sorted(repo.assets_defs_by_key.items())
    }


def test_definitions_resolve_every_asset_and_sensor() -> None:
    import definitions

    repo = _defs().get_repository_def()
    products = definitions.products
    assert [p.id for p in products] == [  # the demo domains, in declaration order
        "analytics.productions_started_daily",
        "analytics.productions_started_daily_table",
        "analytics.productions_daily_serving",
        "analytics.talent_credits",
        "content.artwork",
        "content.localized_titles",
        "content.title_catalog",
        "content.localized_titles_serving",
        "studio.movies",
        "studio.productions",
        "studio.movie_catalog",
        "studio.movies_history",
        "studio.talent",
    ]
    tables = {
        ("postgres", p.source.database, p.source.schema, p.source.table)
        for p in products
        if p.source is not None
    }
    assert {tuple(k.path) for k in repo.assets_defs_by_key} == {
        (p.domain, p.name) for p in products
    } | tables  # one asset per product, one external asset per captured table, nothing else
    assert len(tables) == 4
    assert {tuple(k.path) for k in repo.source_assets_by_key} == {
        (p.domain, f"{p.name}_dlq") for p in products if p.kind == "processor"
    }
    topics = {f"{p.domain}__{p.name}__topic" for p in products if p.kind in ("cdc", "processor")}
    assert {s.name for s in repo.sensor_defs} == topics | {
        "mesh_slo_sensor",
        "mesh_drift_sensor",
        "mesh_streaming_start",
    }
    assert len(topics) == 7
    job = repo.get_implicit_global_asset_job_def()
    assert job is not None
    assert job.executor_def is dg.in_process_executor  # one process per run (definitions.py)


def test_asset_specs_match_snapshot() -> None:
    current = snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), "no snapshot: run UPDATE_SNAPSHOTS=1 make test-unit and review it"
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_asset_has_owner_kind_schema_and_cross_domain_dep() -> None:
    current = snapshot()
    for key, spec in current.items():
        assert spec["owners"], key
        assert spec["kinds"], key
        assert spec["columns"], key
        assert {"domain", "tier", "access"} <= set(spec["tags"]), key
    assert "studio/movies" in current["content/localized_titles"]["deps"]


def _spec(key: str) -> dg.AssetSpec:
    repo = _defs().get_repository_def()
    asset_key = dg.AssetKey(key.split("/"))
    return repo.assets_defs_by_key[asset_key].specs_by_key[asset_key]


def test_sinks_carry_table_name_and_column_lineage_from_their_input() -> None:
    history = _spec("studio/movies_history")
    assert history.metadata["dagster/table_name"] == "studio.movies_history"
    lineage = history.metadata["dagster/column_lineage"]
    [dep] = lineage.deps_by_column["title"]
    assert (dep.asset_key, dep.column_name) == (dg.AssetKey(["studio", "movies"]), "title")
    columns = [c.name for c in history.metadata["dagster/column_schema"].columns]
    assert columns[-5:] == ["_op", "_lsn", "_event_time", "_partition", "_offset"]
    serving = _spec("content/localized_titles_serving")
    assert serving.metadata["dagster/table_name"] == "serving.public.localized_titles"
    assert set(serving.metadata["dagster/column_lineage"].deps_by_column) == {
        "movie_id",
        "locale",
        "title",
        "artwork_url",
    }


def test_topic_sensors_run_by_default_and_select_the_sinks_they_feed() -> None:
    repo = _defs().get_repository_def()
    sensor = repo.get_sensor_def("content__localized_titles__topic")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.asset_selection is not None
    keys = sensor.asset_selection.resolve(repo.asset_graph)
    assert keys == {
        dg.AssetKey(["content", "title_catalog"]),
        dg.AssetKey(["content", "localized_titles_serving"]),
    }


def test_the_graph_starts_at_the_source_tables() -> None:
    movies = _spec("studio/movies")
    table = dg.AssetKey(["postgres", "studio", "public", "movies"])
    assert table in {d.asset_key for d in movies.deps}
    [dep] = movies.metadata["dagster/column_lineage"].deps_by_column["title"]
    assert (dep.asset_key, dep.column_name) == (table, "title")
    source = _spec("postgres/studio/public/movies")
    assert source.group_name == "studio" and list(source.owners) == ["team:studio-eng"]
    assert source.metadata["dagster/table_name"] == "studio.public.movies"


def test_a_fresh_instance_starts_every_streaming_product_and_nothing_else() -> None:
    """The start-once condition on an empty instance: every CDC product, processor and postgres
    sink is requested (the never-materialized source tables do not hold them back); Iceberg
    sinks are left to their topic sensors."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=_defs(), instance=instance)
    requested = {r.key.to_user_string() for r in result.results if r.true_subset.size}
    assert requested == {
        "studio/movies",
        "studio/productions",
        "studio/talent",
        "studio/movie_catalog",
        "analytics/productions_started_daily",
        "analytics/productions_daily_serving",
        "content/artwork",
        "content/localized_titles",
        "content/localized_titles_serving",
    }


def _step_order(keys: list[dg.AssetKey]) -> list[str]:
    """The order the in-process executor runs a run of ``keys`` in (every step succeeding):
    Dagster's own execution plan and its choice among ready steps (``dagster/priority``)."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.plan.active import ActiveExecution
    from dagster._core.execution.plan.outputs import StepOutputHandle
    from dagster._core.execution.retries import RetryMode

    job = _defs().resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(keys))
    order: list[str] = []
    with ActiveExecution(create_execution_plan(job), RetryMode.DISABLED) as active:
        while not active.is_complete and (step := active.get_next_step()) is not None:
            order.append(step.key)
            for out in step.step_outputs:
                active.mark_step_produced_output(StepOutputHandle(step.key, out.name))
            active.mark_success(step.key)
    return order


def test_a_start_run_deploys_every_product_before_any_drift_check() -> None:
    from datamesh.specs import load_products
    from mesh_assets import DOMAINS_DIR
    from mesh_assets.policy import STREAMING_KINDS, asset_key

    streaming = [p for p in load_products(DOMAINS_DIR) if p.kind in STREAMING_KINDS]
    order = _step_order([asset_key(p) for p in streaming])
    assets = [order.index(f"{p.domain}__{p.name}") for p in streaming]
    drift = [i for i, step in enumerate(order) if step.endswith("__drift")]
    assert len(drift) == len(streaming) and max(assets) < min(drift), order
    for p in streaming:  # each product's SLO checks still follow its deployment
        assert order.index(f"{p.domain}__{p.name}__slo_checks") > order.index(
            f"{p.domain}__{p.name}"
        )


def test_a_start_run_deploys_what_others_wait_on_first() -> None:
    from datamesh.specs import load_products
    from mesh_assets import DOMAINS_DIR
    from mesh_assets.policy import STREAMING_KINDS, asset_key, downstream

    products = load_products(DOMAINS_DIR)
    below = downstream(products)
    assert below["studio.movies"] >= {"content.localized_titles", "content.title_catalog"}
    assert below["studio.movie_catalog"] == set()  # nothing reads it
    streaming = [p for p in products if p.kind in STREAMING_KINDS]
    order = _step_order([asset_key(p) for p in streaming])
    # the jobs feeding sinks before the job nobody reads
    for step in ["analytics__productions_started_daily", "content__localized_titles"]:
        assert order.index(step) < order.index("studio__movie_catalog"), order
    # a CDC product's checks wait while any asset can run: not the instant its connector
    # streams, before the connector's first event registered the schema they read
    cdc = [f"{p.domain}__{p.name}" for p in streaming if p.kind == "cdc"]
    assert min(order.index(f"{s}__slo_checks") for s in cdc) > max(map(order.index, cdc)), order
