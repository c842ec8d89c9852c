"""Where the embedded Flink distribution comes from: MESH_FLINK_DIST, else .venv-flink."""

from __future__ import annotations

import os
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


def _module_and_jar(root: Path, source_age_s: float) -> tuple[Path, Path]:
    """A format module with one source ``source_age_s`` older than its jar (negative: newer)."""
    source = root / "jvm" / "flink-format" / "src" / "main" / "java" / "Format.java"
    source.parent.mkdir(parents=True)
    source.write_text("class Format {}")
    jar = root / "jars" / flink.FORMAT_JAR
    jar.parent.mkdir()
    jar.write_bytes(b"PK")
    built = jar.stat().st_mtime
    os.utime(source, (built - source_age_s, built - source_age_s))
    return root / "jvm" / "flink-format", jar


@pytest.mark.parametrize(
    ("source_age_s", "stale"),
    [(60.0, False), (0.0, False), (-60.0, True)],
    ids=["built-after-its-sources", "same-second", "a-source-changed-since"],
)
def test_a_format_jar_older_than_its_sources_is_named(
    tmp_path: Path, source_age_s: float, stale: bool
) -> None:
    module, jar = _module_and_jar(tmp_path, source_age_s)
    said = flink.stale_format_jar(jar, module)
    assert (said is not None) == stale
    if stale:
        source = "jvm/flink-format/src/main/java/Format.java"
        assert said == f"{flink.FORMAT_JAR} is older than {source}"


def test_a_stale_format_jar_stops_the_flink_start_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, jar = _module_and_jar(tmp_path, -60.0)
    (jar.parent / "flink-sql-connector-kafka-5.0.0-2.2.jar").write_bytes(b"PK")
    monkeypatch.setattr(flink, "jars_dir", lambda: tmp_path / "jars-root")
    (tmp_path / "jars-root").mkdir()
    jar.parent.rename(tmp_path / "jars-root" / "flink")
    monkeypatch.setattr(flink, "PROJECT_ROOT", tmp_path)
    with pytest.raises(StackError) as err:
        flink.classpath_jars("flink")
    assert "make jars" in str(err.value.fix) and "is older than" in str(err.value)


def test_an_installation_without_the_format_sources_is_not_stale(tmp_path: Path) -> None:
    jar = tmp_path / flink.FORMAT_JAR
    jar.write_bytes(b"PK")
    assert flink.stale_format_jar(jar, tmp_path / "jvm" / "flink-format") is None
