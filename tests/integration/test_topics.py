"""Topic provisioning against the real broker: create, idempotence, drift."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # not in its __all__

from datamesh.errors import DriftError
from datamesh.kafka_admin import TopicAdmin
from datamesh.specs.product import TopicSettings
from datamesh.topic_apply import ensure_topic
from resources.kafka import KafkaResource

pytestmark = pytest.mark.integration

SETTINGS = TopicSettings(
    partitions=3, replication_factor=1, retention_ms=3_600_000, cleanup_policy="compact"
)


@pytest.fixture
def admin(mesh_stack: object) -> TopicAdmin:
    return KafkaResource().admin()


def test_creates_with_declared_settings_then_is_idempotent(
    admin: TopicAdmin, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("t")
    observed, created = ensure_topic(admin, name, SETTINGS, "products.yaml")
    assert created
    assert observed.partitions == 3
    assert observed.configs["cleanup.policy"] == "compact"
    assert observed.configs["retention.ms"] == "3600000"
    again, created_again = ensure_topic(admin, name, SETTINGS, "products.yaml")
    assert not created_again
    assert again == observed


def test_config_drift_is_an_error_and_nothing_changes(
    admin: TopicAdmin, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("t")
    ensure_topic(admin, name, SETTINGS, "products.yaml")
    admin.alter_config(name, {"retention.ms": "1000"})
    with pytest.raises(DriftError) as info:
        ensure_topic(admin, name, SETTINGS, "studio/products.yaml")
    err = info.value
    assert (err.setting, err.expected, err.actual) == ("retention.ms", "3600000", "1000")
    assert "studio/products.yaml" in str(err)
    observed = admin.describe(name)
    assert observed is not None and observed.configs["retention.ms"] == "1000"


def test_partition_drift_never_changes_partitions(
    admin: TopicAdmin, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("t")
    raw = admin._admin  # create the topic behind the platform's back
    raw.create_topics([NewTopic(name, num_partitions=5, replication_factor=1)])[name].result()
    with pytest.raises(DriftError) as info:
        ensure_topic(admin, name, SETTINGS, "products.yaml")
    assert (info.value.setting, info.value.expected, info.value.actual) == ("partitions", "3", "5")
    observed = admin.describe(name)
    assert observed is not None and observed.partitions == 5


def test_describe_missing_topic_is_none(
    admin: TopicAdmin, unique_name: Callable[[str], str]
) -> None:
    assert admin.describe(unique_name("missing")) is None
