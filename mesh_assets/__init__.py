"""Data products as Dagster assets: declarations live in ``domains/``, one factory builds them."""

from pathlib import Path

from mesh_assets.factory import build_assets

DOMAINS_DIR = Path(__file__).parent / "domains"

__all__ = ["DOMAINS_DIR", "build_assets"]
