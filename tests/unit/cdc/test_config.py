"""Connector configuration and the supervisor's command line (pure: no services)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from datamesh.cdc.config import ConnectorConfig, default_slot, from_args, to_args
from datamesh.cdc.errors import SourceConfigError
from datamesh.cdc.supervisor import command

BASE = [
    "--dsn",
    "postgresql://u@h:5432/postgres",
    "--database",
    "studio",
    "--tables",
    "public.movies, public.productions",
    "--domain",
    "studio",
    "--bootstrap",
    "k:9092",
    "--registry",
    "http://r:8081",
]


def test_defaults_derive_names_from_the_connector() -> None:
    config = from_args(BASE)
    assert config.name == "studio-studio-cdc"
    assert (
        config.slot == config.publication == default_slot("studio", "studio") == "studio_studio_cdc"
    )
    assert config.tables == ("public.movies", "public.productions")
    assert config.topic("public.movies") == "studio.public.movies"
    assert "dbname=studio" in config.database_dsn.split()  # URL DSNs become key=value


def test_command_line_round_trips() -> None:
    config = dataclasses.replace(
        from_args(BASE),
        snapshot="never",
        chunk_size=10,
        heartbeat_s=0.5,
        partitions=3,
        status_file=Path("/tmp/s.json"),
        set_replica_identity=True,
        recreate_slot=True,
        truncate="skip",
        cleanup_policy="delete",
    )
    assert from_args(to_args(config)) == config
    argv = command(config)
    assert argv[:3] == [sys.executable, "-m", "datamesh.cdc"]
    assert config.dsn not in argv  # passed in $MESH_CDC_DSN instead


def test_dsn_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    without = [a for a in BASE if a not in ("--dsn", "postgresql://u@h:5432/postgres")]
    monkeypatch.setenv("MESH_CDC_DSN", "postgresql://u:secret@h/postgres")
    assert from_args(without).dsn == "postgresql://u:secret@h/postgres"
    monkeypatch.delenv("MESH_CDC_DSN")
    with pytest.raises(SourceConfigError, match="no source DSN"):
        from_args(without)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--tables", "movies"], "expected schema.table names"),
        (["--slot", "Bad-Slot"], "slot name 'Bad-Slot' is not valid"),
        (["--chunk-size", "0"], "--chunk-size 0"),
    ],
)
def test_bad_configuration_names_the_fix(change: list[str], message: str) -> None:
    with pytest.raises(SourceConfigError, match=message) as info:
        from_args([*BASE, *change])
    assert info.value.fix


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        from_args(BASE).slot = "x"  # type: ignore[misc]
    assert isinstance(from_args(BASE), ConnectorConfig)
