"""Sensors: a pure decision (``decide``) plus thin Dagster wrappers: one per Kafka-backed topic,
the automation sensor that starts streaming products, and the SLO checks' sensor."""

from collections.abc import Sequence

import dagster as dg

from datamesh.specs.product import DataProduct
from sensors.slo_sensor import build_slo_sensor
from sensors.topic_sensor import build_topic_sensors


def build_sensors(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """Every sensor of the code location."""
    return build_topic_sensors(products) + build_slo_sensor(products)


__all__ = ["build_sensors"]
