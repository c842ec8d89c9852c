"""Thin, typed wrapper over confluent-kafka's ``AdminClient`` for the topic controller.

confluent-kafka (librdkafka) is the maintained Kafka client for Python and speaks SASL/SSL; every
``KafkaException`` is wrapped here with the topic name and whether a retry may help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from datamesh.errors import MeshError, TerminalError, TransientError
from datamesh.polling import poll
from datamesh.topic_plan import CreateTopic, ObservedTopic, desired_configs

TIMEOUT_S = 15.0
# librdkafka logs at info level (6) that it "purged unserved events from the background queue"
# whenever a short-lived admin client is destroyed: noise on every CLI command. Notice (5) and
# above still reach stderr.
QUIET = {"log_level": 5}


def kafka_error(action: str, exc: Exception) -> MeshError:
    """Map a confluent-kafka exception to the platform's terminal/transient split."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    detail = err.str() if err else str(exc)
    if err is not None and err.retriable():
        return TransientError(f"{action}: {detail}", fix="retry; check the broker is reachable")
    return TerminalError(f"{action}: {detail}", fix="check the broker's answer above")


def _unknown(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return err is not None and err.code() in (
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
    )


class TopicAdmin:
    """Describe and create topics on one cluster."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._admin = AdminClient({**QUIET, **config})

    def describe(self, name: str) -> ObservedTopic | None:
        """The topic as the broker sees it, or None when it does not exist."""
        try:
            meta = self._admin.list_topics(topic=name, timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise kafka_error(f'describe topic "{name}"', exc) from exc
        topic = meta.topics.get(name)
        if topic is None or (
            topic.error is not None
            and topic.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
        ):
            return None
        replicas = len(next(iter(topic.partitions.values())).replicas) if topic.partitions else 0
        try:
            configs = self._configs(name)
        except MeshError as exc:  # deleted between the two requests: it does not exist
            if isinstance(exc.__cause__, KafkaException) and _unknown(exc.__cause__):
                return None
            raise
        return ObservedTopic(name, len(topic.partitions), replicas, configs)

    def describe_many(self, names: Iterable[str]) -> dict[str, ObservedTopic]:
        """The topics among ``names`` that exist, in two round trips (one metadata request,
        one batched config request) whatever their number: the controller's view of the mesh."""
        wanted = set(names)
        try:
            meta = self._admin.list_topics(timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise kafka_error("list topics", exc) from exc
        present = {n: t for n, t in meta.topics.items() if n in wanted and t.error is None}
        if not present:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in sorted(present)]
        futures = self._admin.describe_configs(resources, request_timeout=TIMEOUT_S)
        configs: dict[str, dict[str, str]] = {}
        for res, fut in futures.items():
            try:
                entries = fut.result()
            except KafkaException as exc:
                if _unknown(exc):  # deleted since the metadata request
                    continue
                raise kafka_error(f'describe configs of topic "{res.name}"', exc) from exc
            configs[res.name] = {k: v.value for k, v in entries.items() if v.value is not None}
        out: dict[str, ObservedTopic] = {}
        for name, topic in present.items():
            if name not in configs:
                continue
            parts = topic.partitions
            replicas = len(next(iter(parts.values())).replicas) if parts else 0
            out[name] = ObservedTopic(name, len(parts), replicas, configs[name])
        return out

    def create(self, action: CreateTopic) -> None:
        """Create the topic; "already exists" counts as success (apply is idempotent)."""
        s = action.settings
        new = NewTopic(
            action.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=desired_configs(s),
        )
        future = self._admin.create_topics([new], request_timeout=TIMEOUT_S)[action.name]
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            raise kafka_error(f'create topic "{action.name}"', exc) from exc

    def delete(self, name: str) -> None:
        """Delete a topic ("does not exist" is success) and wait until the broker's metadata no
        longer lists it (deletion is asynchronous): a retirement applied with
        ``--allow-delete``, and tests."""
        try:
            self._admin.delete_topics([name], request_timeout=TIMEOUT_S)[name].result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise kafka_error(f'delete topic "{name}"', exc) from exc
        if poll(lambda: self.describe(name) is None or None, TIMEOUT_S, interval_s=0.2) is None:
            raise TransientError(
                f'delete topic "{name}": still listed after {TIMEOUT_S:.0f}s',
                fix="check the broker log; run the apply again",
            )

    def alter_config(self, name: str, configs: dict[str, str]) -> None:
        """Set topic configs (incrementally); used to simulate drift in tests and by operators."""
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in configs.items()
        ]
        res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        try:
            self._admin.incremental_alter_configs([res])[res].result()
        except KafkaException as exc:
            raise kafka_error(f'alter topic "{name}"', exc) from exc
        # the change reaches the broker's metadata asynchronously: wait for it, and say so when
        # it never shows (a caller must not go on believing a setting it does not have)
        if poll(lambda: self._applied(name, configs), TIMEOUT_S, interval_s=0.1) is None:
            current = self._configs(name)
            missing = {k: current.get(k) for k, v in configs.items() if current.get(k) != v}
            raise TransientError(
                f'alter topic "{name}": after {TIMEOUT_S:.0f}s the broker still reports '
                + ", ".join(f"{k}={v}" for k, v in missing.items()),
                fix="check the broker log (a config policy may refuse the change); retry",
            )

    def _applied(self, name: str, configs: dict[str, str]) -> bool:
        current = self._configs(name)
        return all(current.get(k) == v for k, v in configs.items())

    def _configs(self, name: str) -> dict[str, str]:
        res = ConfigResource(ResourceType.TOPIC, name)
        try:
            entries = self._admin.describe_configs([res], request_timeout=TIMEOUT_S)[res].result()
        except KafkaException as exc:
            raise kafka_error(f'describe configs of topic "{name}"', exc) from exc
        return {k: v.value for k, v in entries.items() if v.value is not None}
