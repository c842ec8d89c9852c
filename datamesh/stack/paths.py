"""Where the embedded stack keeps its state, jars and logs (one place decides)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def mesh_home() -> Path:
    """Work directory of the embedded stack: ``$MESH_HOME`` or ``<project>/.mesh``."""
    return Path(os.environ.get("MESH_HOME") or PROJECT_ROOT / ".mesh").resolve()


def jars_dir() -> Path:
    """Maven-resolved jars (``make jars``): ``$MESH_JARS_DIR`` or ``<project>/.mesh/jars``."""
    return Path(os.environ.get("MESH_JARS_DIR") or PROJECT_ROOT / ".mesh" / "jars").resolve()


def state_file() -> Path:
    """The JSON record of what ``mesh up`` started."""
    return mesh_home() / "state.json"
