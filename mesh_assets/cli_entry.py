"""The one door from the ``mesh`` CLI into the Dagster layer.

``datamesh`` is the platform without Dagster: the CLI, the controllers and the data plane import
no Dagster code, so ``mesh`` starts fast and works where Dagster is not installed as a library
(a connector host). The few commands that need Dagster's view ask here, and only here — the
import contract in ``pyproject.toml`` (``[tool.importlinter]``) allows exactly the edge
``datamesh.cli -> mesh_assets.cli_entry`` and fails on any other path from ``datamesh`` to
``dagster``.

- :func:`catalog_health`: each product's last SLO check results in ``mesh dev``'s instance,
  for ``mesh catalog``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as Status,
)

from datamesh import names
from datamesh.catalog.health import UNKNOWN, verdict
from datamesh.checks.evaluate import checks_for
from datamesh.specs.product import DataProduct
from datamesh.stack.dagster_dev import dagster_home


def catalog_health(products: Sequence[DataProduct], home: Path | None = None) -> dict[str, str]:
    """Product id -> ``ok``, ``failing: <checks>`` or ``unknown``: its SLO checks' last results
    in the Dagster instance at ``home`` (``mesh dev``'s ``DAGSTER_HOME`` by default), read from
    that instance's storage (no webserver needed); every one ``unknown`` without an instance."""
    home = home or dagster_home()
    if not (home / "history").exists() and not (home / "dagster.yaml").exists():
        return {p.id: UNKNOWN for p in products}
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
