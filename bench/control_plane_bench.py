"""Control-plane figures: topic apply through the platform vs raw AdminClient creates; no-op
``plan`` and ``apply`` of 10, 100 and 1,000 generated CDC products (:mod:`bench.plan_bench`);
Dagster definitions load of 10, 100 and 1,000 generated products
(:mod:`bench.definitions_bench`).

Floors (issue 12): a no-op plan of 1,000 products under 5 s, a definitions load of 1,000 products
under 10 s.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # not in its __all__

from bench import definitions_bench, plan_bench
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic

SETTINGS = TopicSettings(
    partitions=3, replication_factor=1, retention_ms=86_400_000, cleanup_policy="delete"
)


SIZES = (10, 100, 1000)  # the scale table of bench/REPORT.md reads all three


def run(bootstrap: str) -> dict[str, float]:
    """Every control-plane figure; see the module docstring."""
    tag = uuid.uuid4().hex[:6]
    figures = topic_figures(bootstrap)
    for n in SIZES:
        figures |= plan_bench.run(n, tag)
    for n in SIZES:
        figures |= definitions_bench.run(n, tag)
    return figures


def topic_figures(bootstrap: str, topics: int = 30) -> dict[str, float]:
    """Seconds per topic for plan+apply (create + validate) against raw creates, same broker."""
    admin = TopicAdmin(client_config(bootstrap))
    tag = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    for i in range(topics):
        ensure_topic(admin, f"bench.cp_{tag}_{i}", SETTINGS, "bench")
    apply_s = (time.perf_counter() - start) / topics
    start = time.perf_counter()
    for i in range(topics):
        ensure_topic(admin, f"bench.cp_{tag}_{i}", SETTINGS, "bench")  # in sync: validate only
    validate_s = (time.perf_counter() - start) / topics
    raw = admin._admin
    start = time.perf_counter()
    for i in range(topics):
        name = f"bench.raw_{tag}_{i}"
        raw.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result()
    raw_s = (time.perf_counter() - start) / topics
    return {
        "apply_new_topic_ms": round(apply_s * 1000, 1),
        "validate_topic_ms": round(validate_s * 1000, 1),
        "raw_create_topic_ms": round(raw_s * 1000, 1),
        "ratio_vs_raw_admin": round(raw_s / apply_s, 3),
    }
