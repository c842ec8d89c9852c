"""Sinks: the end of every pipeline — Iceberg tables applied in batches from a Kafka topic, and
PostgreSQL tables kept current by a streaming Flink job.

:mod:`datamesh.sinks.iceberg_sink` runs one batch (read, decode, evolve, commit one snapshot with
the offsets it consumed); :mod:`datamesh.specs.partitioning` parses ``partition_by``;
:mod:`datamesh.sinks.changes` turns decoded records into upserts, deletes or change-log rows.
"""
