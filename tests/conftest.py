"""Shared test helpers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mesh_assets import DOMAINS_DIR


@pytest.fixture
def domains_copy(tmp_path: Path) -> Callable[[], Path]:
    """Copy the demo domains to a temp dir so a test can break them."""

    def make() -> Path:
        target = tmp_path / "domains"
        shutil.copytree(DOMAINS_DIR, target)
        return target

    return make
