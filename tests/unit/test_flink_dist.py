"""Where the embedded Flink distribution comes from: MESH_FLINK_DIST, else .venv-flink."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.errors import StackError
from datamesh.stack import flink


def test_mesh_flink_dist_names_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(flink.FLINK_DIST_ENV, str(tmp_path))
    assert flink.pyflink_home() == tmp_path


def test_the_flink_venv_holds_the_wheels_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flink.FLINK_DIST_ENV, raising=False)
    home = flink.pyflink_home()  # `make install` built .venv-flink (test-unit depends on it)
    assert (home / "bin" / "taskmanager.sh").exists() and ".venv-flink" in str(home)


def test_a_missing_distribution_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(flink.FLINK_DIST_ENV, raising=False)
    monkeypatch.setattr(flink, "PROJECT_ROOT", tmp_path)
    with pytest.raises(StackError, match="make install"):
        flink.pyflink_home()
