"""A product's health for the catalog, from its SLO checks' last results.

``ok`` when every check passed at its last evaluation, ``failing: <checks>`` otherwise,
``unknown`` when there is no instance, no evaluation yet, or the product has no check. The
results live in Dagster's instance, so reading them is the Dagster layer's job
(:func:`mesh_assets.cli_entry.catalog_health`); ``mesh catalog`` is handed that lookup and
fills health in after ranking. Without one (a host without Dagster), every product is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from datamesh.specs.product import DataProduct

UNKNOWN = "unknown"

# products -> product id -> health
HealthLookup = Callable[[Sequence[DataProduct]], dict[str, str]]


def unknown(products: Sequence[DataProduct]) -> dict[str, str]:
    """The lookup without a Dagster instance: every product ``unknown``."""
    return {p.id: UNKNOWN for p in products}


def verdict(results: dict[str, bool]) -> str:
    """``ok``, ``failing: a, b`` or ``unknown`` from check name -> passed."""
    if not results:
        return UNKNOWN
    failing = sorted(name for name, passed in results.items() if not passed)
    return f"failing: {', '.join(failing)}" if failing else "ok"
