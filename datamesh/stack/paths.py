"""Where the embedded stack keeps its state, jars and logs (one place decides)."""

from __future__ import annotations

from pathlib import Path

from datamesh.endpoints import PROJECT_ROOT, jars_dir, mesh_home

__all__ = ["PROJECT_ROOT", "jars_dir", "mesh_home", "state_file"]


def state_file() -> Path:
    """The JSON record of what ``mesh up`` started."""
    return mesh_home() / "state.json"
