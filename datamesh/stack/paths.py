"""Where the embedded stack keeps its state, jars and logs (decided in datamesh.endpoints)."""

from __future__ import annotations

from pathlib import Path

from datamesh.endpoints import PROJECT_ROOT, jars_dir, mesh_home, state_file

__all__ = ["PROJECT_ROOT", "flink_jobs_dir", "jars_dir", "mesh_home", "state_file"]


def flink_jobs_dir() -> Path:
    """The platform's records of its Flink jobs' savepoints and checkpoints (one JSON per job)."""
    return mesh_home() / "flink-jobs"
