"""Data products as Dagster assets: declarations live in ``domains/``, one factory builds them."""

from datamesh.endpoints import DEMO_DOMAINS_DIR as DOMAINS_DIR
from datamesh.endpoints import DOMAINS_DIR_VAR as DOMAINS_ENV
from datamesh.endpoints import domains_dir
from mesh_assets.factory import build_assets

__all__ = ["DOMAINS_DIR", "DOMAINS_ENV", "build_assets", "domains_dir"]
