"""The command a user types beside `mesh dev` — `dagster asset materialize --select '*' -f
definitions.py` — materializes every demo product against the real stack, into the instance
`mesh dev` uses (the DAGSTER_HOME `mesh status` prints), so the UI shows those runs; each
product's SLO checks run after it in the same run, and on the demo every one passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from datamesh import endpoints, names
from datamesh.checks.evaluate import checks_for
from datamesh.demo import load_demo
from datamesh.specs import load_products
from datamesh.stack.paths import PROJECT_ROOT
from mesh_assets import DOMAINS_DIR
from tests.integration.demo_state import reset_demo

pytestmark = pytest.mark.integration
PRODUCTS = load_products(DOMAINS_DIR)


@pytest.fixture
def demo_loaded(mesh_stack: object) -> Iterator[None]:
    reset_demo()  # a clean demo: no dead letter or offsets left by an earlier test
    load_demo(endpoints.endpoint("postgres"))
    yield
    reset_demo()


def test_dagster_cli_materializes_every_product_into_mesh_devs_instance(
    demo_loaded: None,
) -> None:
    bin_dir = Path(sys.executable).parent
    status = json.loads(
        subprocess.run(
            [str(bin_dir / "mesh"), "status", "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    home = Path(status["dagster_home"])
    assert home.parent == Path(os.environ["MESH_HOME"]).resolve()  # mesh dev's instance
    home.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [str(bin_dir / "dagster"), "asset", "materialize", "--select", "*", "-f", "definitions.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, _failed_checks(home) + run.stderr[-4000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        missing = [
            p.id
            for p in PRODUCTS
            if instance.get_latest_materialization_event(dg.AssetKey(names.asset_key_path(p)))
            is None
        ]
        keys = [
            dg.AssetCheckKey(dg.AssetKey(names.asset_key_path(p)), check)
            for p in PRODUCTS
            for check in checks_for(p)
        ]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert not missing, f"not materialized in {home}: {missing}"
    assert len(keys) >= 15  # freshness, lag, dead letters, schema across the demo
    not_passed = {
        k.to_user_string(): "never ran"
        if r is None
        else (r.status.value, r.evaluation.description if r.evaluation else None)
        for k in keys
        if (r := latest.get(k)) is None or r.status.value != "SUCCEEDED"
    }
    assert not not_passed, f"checks not passed in the CLI's run: {not_passed}"


def _failed_checks(home: Path) -> str:
    """The failed check evaluations in the instance, for the failure message."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=200
        )
    failed = [
        f"{e.asset_key.to_user_string()} {e.check_name}: {e.description}"
        for r in records
        if (e := _evaluation(r)) is not None and not e.passed
    ]
    return "failed checks:\n" + "\n".join(failed) + "\n"


def _evaluation(record: dg.EventLogRecord) -> dg.AssetCheckEvaluation | None:
    """The check evaluation ``record`` carries, if it carries one."""
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data if event is not None else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None
