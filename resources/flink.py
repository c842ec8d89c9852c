"""Flink session cluster as a Dagster resource, over its REST API."""

from __future__ import annotations

from typing import Any

import dagster as dg
import requests

from datamesh import endpoints
from datamesh.errors import TransientError


class FlinkResource(dg.ConfigurableResource):
    """A Flink cluster's REST endpoint (``MESH_FLINK_REST_URL`` or the one ``mesh up`` started)."""

    rest_url: str | None = None

    def url(self) -> str:
        """Base REST URL."""
        return (self.rest_url or endpoints.endpoint("flink")).rstrip("/")

    def overview(self) -> dict[str, Any]:
        """Cluster overview: task managers, slots, running jobs."""
        try:
            resp = requests.get(f"{self.url()}/overview", timeout=10)
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise TransientError(
                f"Flink REST {self.url()} did not answer: {exc}",
                fix="run `mesh up` or check MESH_FLINK_REST_URL",
            ) from exc
        return dict(resp.json())
