"""Sensors: a pure decision (``decide``) plus thin Dagster wrappers, one per Kafka-backed topic."""

from sensors.topic_sensor import build_sensors

__all__ = ["build_sensors"]
