"""Every derived name in the platform, from one module of pure functions.

Formats (a test rejects collisions between them):

==================  ================================  ===================================
what                format                            example
==================  ================================  ===================================
product id          ``<domain>.<product>``            ``studio.movie_catalog``
topic (CDC)         ``<domain>.<schema>.<table>``     ``studio.public.movies``
topic (other)       ``<domain>.<product>``            ``studio.movie_catalog``
value subject       ``<topic>-value``                 ``studio.public.movies-value``
key subject         ``<topic>-key``                   ``studio.public.movies-key``
dead-letter topic   ``<topic>.dlq``                   ``studio.movie_catalog.dlq``
asset key           ``[<domain>, <product>]``         ``studio/movies``
CDC connector       ``<domain>-<database>-cdc``       ``studio-studio-cdc``
Flink job           ``mesh-<domain>-<product>``       ``mesh-studio-movie_catalog``
Iceberg table       ``<domain>.<product>``            ``content.title_catalog``
sink dead letters   ``<domain>.<product>.dlq``        ``content.title_catalog.dlq``
Iceberg sink group  ``mesh-sink-<domain>-<product>``  ``mesh-sink-content-title_catalog``
Kafka principal     ``User:<domain>.<product>``       ``User:studio.movie_catalog``
==================  ================================  ===================================

A Flink job's Kafka consumer group is its job name; an Iceberg sink's is its sink group (it never
commits offsets there: the table holds them, but the group is what its ACL names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datamesh.specs.product import DataProduct


def product_id(domain: str, name: str) -> str:
    """How declarations refer to a product."""
    return f"{domain}.{name}"


def topic(product: DataProduct) -> str:
    """The Kafka topic that carries a product (CDC topics follow Debezium's naming)."""
    if product.source is not None:
        return f"{product.domain}.{product.source.schema}.{product.source.table}"
    return f"{product.domain}.{product.name}"


def value_subject(topic_name: str) -> str:
    """Schema registry subject of a topic's values (Confluent TopicNameStrategy)."""
    return f"{topic_name}-value"


def key_subject(topic_name: str) -> str:
    """Schema registry subject of a topic's keys (Confluent TopicNameStrategy)."""
    return f"{topic_name}-key"


def dlq_topic(topic_name: str) -> str:
    """Dead-letter topic for messages of ``topic_name`` that could not be processed."""
    return f"{topic_name}.dlq"


def asset_key_path(product: DataProduct) -> list[str]:
    """Dagster asset key path of a product."""
    return [product.domain, product.name]


def connector(domain: str, database: str) -> str:
    """Name of the CDC connector process that follows one source database."""
    return f"{domain}-{database}-cdc"


def flink_job(product: DataProduct) -> str:
    """Flink job name of a processor or ``postgres_sink`` product (one job per product)."""
    return f"mesh-{product.domain}-{product.name}"


def iceberg_table(product: DataProduct) -> tuple[str, str]:
    """Iceberg (namespace, table) of a sink product."""
    return (product.domain, product.name)


def kafka_collision_key(topic_name: str) -> str:
    """Kafka treats ``.`` and ``_`` alike in metric names: topics differing only there collide."""
    return topic_name.replace(".", "_")


def sink_dlq_topic(product: DataProduct) -> str:
    """Dead-letter topic of a sink (records of its input it could not apply)."""
    return dlq_topic(f"{product.domain}.{product.name}")


def sink_group(product_id: str) -> str:
    """Kafka consumer group of an ``iceberg_sink`` (``product_id`` is ``<domain>.<product>``)."""
    domain, name = product_id.split(".", 1)
    return f"mesh-sink-{domain}-{name}"


def consumer_group(product: DataProduct) -> str:
    """The Kafka consumer group a processor or sink reads its inputs with."""
    return sink_group(product.id) if product.kind == "iceberg_sink" else flink_job(product)


PRINCIPAL_PREFIX = "User:"


def principal(product_id: str) -> str:
    """Kafka principal a processor or sink authenticates as: ``User:<domain>.<product>``.

    With SASL/PLAIN the username is the product id; the ACL planner grants this principal read
    on the product's inputs.
    """
    return f"{PRINCIPAL_PREFIX}{product_id}"


def principal_product(principal_name: str) -> str | None:
    """Inverse of :func:`principal`: the product id, or None for any other principal."""
    if not principal_name.startswith(PRINCIPAL_PREFIX):
        return None
    rest = principal_name.removeprefix(PRINCIPAL_PREFIX)
    return rest if rest.count(".") == 1 and all(rest.split(".")) else None
