"""Every derived name in the platform, from one module of pure functions.

Formats (a test rejects collisions between them):

==================  =============================================  ==========================
what                format                                         example
==================  =============================================  ==========================
product id          ``<domain>.<product>``                         ``studio.movie_catalog``
topic (CDC)         ``<domain>.<schema>.<table>``                  ``studio.public.movies``
topic (other)       ``<domain>.<product>``                         ``studio.movie_catalog``
value subject       ``<topic>-value``                              ``studio.public.movies-value``
key subject         ``<topic>-key``                                ``studio.public.movies-key``
dead-letter topic   ``<topic>.dlq``                                ``studio.movie_catalog.dlq``
asset key           ``[<domain>, <product>]``                      ``studio/movies``
CDC connector       ``<domain>-<database>-cdc``                    ``studio-studio-cdc``
Flink job           ``mesh-<domain>-<product>``                    ``mesh-studio-movie_catalog``
Iceberg table       ``<domain>.<product>``                         ``content.title_catalog``
sink dead letters   ``<domain>.<product>.dlq``                     ``content.title_catalog.dlq``
==================  =============================================  ==========================
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
