"""Tier-1 checks block downstream sinks: the last failed evaluation of an input's blocking check
keeps an Iceberg sink from writing (before it touches anything), and a later pass releases it."""

from __future__ import annotations

import dagster as dg
import pytest

from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR, build_assets
from mesh_assets.checks import failing_blocking_checks
from resources import resources_for

PRODUCTS = load_products(DOMAINS_DIR)
BY_ID = {p.id: p for p in PRODUCTS}
MOVIES = dg.AssetKey(["studio", "movies"])


def _report(instance: dg.DagsterInstance, check: str, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=MOVIES,
            check_name=check,
            passed=passed,
            description=f"{check} {'ok' if passed else 'failed'}",
            severity=dg.AssetCheckSeverity.ERROR,
        )
    )


def test_the_last_failed_blocking_evaluation_blocks_and_a_pass_releases() -> None:
    movies = BY_ID["studio.movies"]  # tier 1: freshness and schema block, lag does not
    with dg.DagsterInstance.ephemeral() as instance:
        assert failing_blocking_checks(instance, movies) == []
        _report(instance, "lag", False)
        assert failing_blocking_checks(instance, movies) == []
        _report(instance, "freshness", False)
        assert failing_blocking_checks(instance, movies) == [
            "studio.movies freshness: freshness failed"
        ]
        _report(instance, "freshness", True)
        assert failing_blocking_checks(instance, movies) == []


def test_a_tier_2_input_never_blocks() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(["studio", "productions"]),
                check_name="freshness",
                passed=False,
            )
        )
        assert failing_blocking_checks(instance, BY_ID["studio.productions"]) == []


def test_an_iceberg_sink_does_not_write_from_a_blocked_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run fails before any system is contacted (no stack here: an endpoint lookup would
    raise a different error), naming the input's failing check."""
    monkeypatch.setenv("MESH_HOME", "/nonexistent-mesh-home")
    [history] = [
        a
        for a in build_assets(PRODUCTS)
        if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["studio", "movies_history"])
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, "schema", False)
        result = dg.materialize(
            [history], resources=resources_for(), instance=instance, raise_on_error=False
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "studio.movies_history does not write" in message
    assert "studio.movies schema" in message
