"""Catalog figures: building the search index over 1,000 products, and one search against it.

Products are generated in memory (no stack needed): 20 domains, every kind, 4-14 documented
fields each, descriptions drawn from a fixed vocabulary with a fixed seed, so runs compare.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from datamesh.catalog.ranking import index, search
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo, TopicSettings

_VOCABULARY = (
    "movie title locale artwork studio production stage budget member account payment plan "
    "device session playback stream bitrate region country language subtitle rating genre "
    "cast crew schedule contract invoice license window catalog launch trailer event click "
    "impression search query experiment cohort churn revenue currency partner episode season"
)
WORDS = tuple(_VOCABULARY.split())
KINDS = ("cdc", "processor", "iceberg_sink", "postgres_sink")
TYPES = ("long", "string", "int", "double", ["null", "string"], "boolean")


def generate(count: int = 1000, seed: int = 7) -> tuple[DataProduct, ...]:
    """``count`` resolved products with unique ids; sinks read earlier Kafka-backed ones."""
    rng = random.Random(seed)
    products: list[DataProduct] = []
    kafka: list[str] = []
    for i in range(count):
        kind = KINDS[i % 4] if len(kafka) > 2 else "cdc"
        products.append(_product(rng, i, kind, _inputs(rng, kind, kafka)))
        if products[-1].is_kafka_backed:
            kafka.append(products[-1].id)
    return tuple(products)


def _inputs(rng: random.Random, kind: str, kafka: list[str]) -> tuple[str, ...]:
    if kind == "cdc":
        return ()
    return (rng.choice(kafka),) if kind.endswith("_sink") else tuple(rng.sample(kafka, 2))


def _product(rng: random.Random, i: int, kind: str, inputs: tuple[str, ...]) -> DataProduct:
    domain = f"d{i % 20}"
    name = f"{'_'.join(rng.sample(WORDS, 2))}_{i}"
    sink = kind.endswith("_sink")
    return DataProduct(
        domain=domain,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        description=" ".join(rng.choices(WORDS, k=12)).capitalize() + ".",
        owners=(f"team:{domain}-data", f"{rng.choice(WORDS)}@example.com"),
        access=rng.choice(("public", "internal", "private")),
        tier=rng.randint(1, 3),
        slo=Slo(freshness=None if sink else _minutes(rng), max_lag=rng.choice((None, 10_000))),
        key=("id",),
        inputs=inputs,
        value_schema=None if sink else _schema(rng, name),
        topic=None if sink else TopicSettings(1, 1, 3_600_000, "delete"),
        compatibility="BACKWARD",
        declared_in=Path(f"/tmp/bench/{domain}/products.yaml"),
        source=CdcSource(domain, "public", name) if kind == "cdc" else None,
        sink=SinkSettings(mode=rng.choice(("upsert", "append"))) if sink else None,
        tags={"team": rng.choice(WORDS)},
    )


def _minutes(rng: random.Random) -> timedelta:
    return timedelta(minutes=rng.choice((5, 15, 60)))


def _schema(rng: random.Random, name: str) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"name": "id", "type": "long", "doc": "Primary key."}]
    for word in rng.sample(WORDS, rng.randint(3, 13)):
        doc = " ".join(rng.choices(WORDS, k=6))
        fields.append(
            {"name": f"{word}_{rng.choice(WORDS)}", "type": rng.choice(TYPES), "doc": doc}
        )
    return {"type": "record", "name": f"R{name}", "fields": fields}


def queries(products: Sequence[DataProduct], count: int = 50, seed: int = 11) -> list[str]:
    """Mixed queries: one to three vocabulary words, every fifth an exact product name."""
    rng = random.Random(seed)
    return [
        " ".join(rng.sample(WORDS, 1 + n % 3)) if n % 5 else rng.choice(products).name
        for n in range(count)
    ]


def run(count: int = 1000, builds: int = 5) -> dict[str, Any]:
    """``{"catalog": {"search_ms", "index_build_ms", "products"}}``: medians, milliseconds."""
    products = generate(count)
    build_s = []
    for _ in range(builds):
        start = time.perf_counter()
        idx = index(products)
        build_s.append(time.perf_counter() - start)
    search_s = []
    for query in queries(products):
        start = time.perf_counter()
        search(idx, query, limit=10)
        search_s.append(time.perf_counter() - start)
    return {
        "catalog": {
            "search_ms": round(statistics.median(search_s) * 1000, 3),
            "search_p95_ms": round(sorted(search_s)[int(len(search_s) * 0.95)] * 1000, 3),
            "index_build_ms": round(statistics.median(build_s) * 1000, 1),
            "products": count,
        }
    }


if __name__ == "__main__":
    print(run())
