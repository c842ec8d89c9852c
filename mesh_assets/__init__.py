"""Data products as Dagster assets: declarations live in ``domains/``, one factory builds them."""

import os
from pathlib import Path

from mesh_assets.factory import build_assets

DOMAINS_DIR = Path(__file__).parent / "domains"
DOMAINS_ENV = "MESH_DOMAINS_DIR"


def domains_dir() -> Path:
    """Where the code location reads declarations: ``MESH_DOMAINS_DIR``, else the demo domains."""
    return Path(os.environ.get(DOMAINS_ENV) or DOMAINS_DIR)


__all__ = ["DOMAINS_DIR", "DOMAINS_ENV", "build_assets", "domains_dir"]
