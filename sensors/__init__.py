"""Sensors: a pure decision (``decide``) plus thin Dagster wrappers: one per Kafka-backed topic,
the automation sensor that starts streaming products, the SLO checks' sensor, the drift
sensor (``plan`` every few minutes) and the declared audit schedules."""

from collections.abc import Sequence

import dagster as dg

from datamesh.specs.product import DataProduct
from sensors.audit_schedule import build_audit_sensors
from sensors.drift_sensor import build_drift_sensor
from sensors.slo_sensor import build_slo_sensor
from sensors.topic_sensor import build_topic_sensors


def build_sensors(products: Sequence[DataProduct]) -> list[dg.SensorDefinition]:
    """Every sensor of the code location."""
    return [
        *build_topic_sensors(products),
        *build_slo_sensor(products),
        *build_drift_sensor(products),
        *build_audit_sensors(products),
    ]


__all__ = ["build_sensors"]
