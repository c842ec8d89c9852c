"""SLO checks: what is read (:mod:`.gather` into :mod:`.observed`), how it is judged
(:mod:`.evaluate`, pure), and what a result says (:mod:`.outcome`). The Dagster side — specs,
severities, blocking, the sensor — lives in ``mesh_assets.checks`` and ``sensors.slo_sensor``."""
