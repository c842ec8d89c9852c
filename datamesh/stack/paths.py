"""Where the embedded stack keeps its state, jars and logs (decided in datamesh.endpoints)."""

from __future__ import annotations

from datamesh.endpoints import PROJECT_ROOT, jars_dir, mesh_home, state_file

__all__ = ["PROJECT_ROOT", "jars_dir", "mesh_home", "state_file"]
