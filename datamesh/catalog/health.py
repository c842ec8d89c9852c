"""A product's health for the catalog: its SLO checks' last results in ``mesh dev``'s Dagster
instance (the ``DAGSTER_HOME`` ``mesh status`` prints), read from that instance's storage.

``ok`` when every check passed at its last evaluation, ``failing: <checks>`` otherwise,
``unknown`` when there is no instance, no evaluation yet, or the product has no check. The one
part of the catalog that reads anything: ``mesh catalog`` fills it in after ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datamesh import names
from datamesh.checks.evaluate import checks_for
from datamesh.specs.product import DataProduct

UNKNOWN = "unknown"


def health(products: Sequence[DataProduct], home: Path | None = None) -> dict[str, str]:
    """Product id -> health, for ``products``; every one ``unknown`` without an instance."""
    from datamesh.stack.dagster_dev import dagster_home

    home = home or dagster_home()
    if not (home / "history").exists() and not (home / "dagster.yaml").exists():
        return {p.id: UNKNOWN for p in products}
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    done = {Status.SUCCEEDED, Status.FAILED}
    out: dict[str, str] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        for p in products:
            results: dict[str, bool] = {}
            for check in checks_for(p):
                key = dg.AssetCheckKey(dg.AssetKey(names.asset_key_path(p)), check)
                records = storage.get_asset_check_execution_history(key, limit=1, status=done)
                if records:
                    results[check] = records[0].status == Status.SUCCEEDED
            out[p.id] = verdict(results)
    return out


def verdict(results: dict[str, bool]) -> str:
    """``ok``, ``failing: a, b`` or ``unknown`` from check name -> passed."""
    if not results:
        return UNKNOWN
    failing = sorted(name for name, passed in results.items() if not passed)
    return f"failing: {', '.join(failing)}" if failing else "ok"
