"""The embedded stack: real Kafka, PostgreSQL, Flink and the schema registry on loopback.

``mesh up`` starts each component as a plain process (no Docker on this machine), records its
PID and endpoint in ``<MESH_HOME>/state.json`` and waits for real readiness; ``mesh down`` stops
them by PID. A component whose ``MESH_*`` endpoint variable is set is an external deployment and
is never started or stopped.
"""
