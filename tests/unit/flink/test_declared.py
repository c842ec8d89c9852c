"""The declaration -> Flink job mapping lives in datamesh.flink.declared, not in the resource."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import resources.flink
from datamesh.flink.declared import job_for, on_incompatible, settings_of
from datamesh.flink.job import JobSettings
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR


def test_defaults_come_from_the_declaration_model() -> None:
    product = replace(load_products(DOMAINS_DIR)[0], flink={})
    assert settings_of(product) == JobSettings()
    assert on_incompatible(product) == "from-offsets"


def test_declared_settings_become_job_settings() -> None:
    flink = {"parallelism": 3, "checkpoint_interval": "1m", "delivery": "exactly-once"}
    product = replace(load_products(DOMAINS_DIR)[0], flink=flink)
    settings = settings_of(product)
    assert settings.parallelism == 3 and settings.checkpoint_interval_ms == 60_000
    assert settings.delivery == "exactly-once" and settings.changelog_mode == "upsert"


def test_typed_processor_job(domains_copy: Callable[[], Path]) -> None:
    root = domains_copy()
    file = root / "studio" / "products.yaml"
    file.write_text(
        file.read_text()
        .replace(
            "    inputs: [studio.movies, studio.productions]\n    sql: movie_catalog.sql\n",
            '    inputs: [studio.movies]\n    processor: {type: filter, where: "id > 1"}\n',
        )
        .replace("      studio.productions: [movie_id, stage, location]\n", "")
    )
    products = {p.id: p for p in load_products(root)}
    job = job_for(products["studio.movie_catalog"], products, registered={})
    assert job.sql == "SELECT *\nFROM `studio.movies`\nWHERE id > 1"


def test_the_resource_holds_no_mapping() -> None:
    source = inspect.getsource(resources.flink)
    for name in ("def job_for", "def sink_job_for", "def settings_of", "parse_duration"):
        assert name not in source
