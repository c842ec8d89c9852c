"""The connector health verdict (pure) behind the probes and ``mesh cdc health``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from datamesh.cdc import cli, health
from datamesh.cdc.status import Status, write_status

NOW = 1_000_000.0

CASES: list[tuple[str, dict[str, Any] | None, bool, str | None]] = [
    # (case, status, ready?, expected reason fragment; None = healthy)
    ("no file", None, False, "no status file yet"),
    ("streaming, fresh", {"state": "streaming", "updated_at": NOW - 1}, False, None),
    ("streaming, fresh, ready", {"state": "streaming", "updated_at": NOW - 1}, True, None),
    ("paused table is ready", {"state": "paused", "updated_at": NOW - 2}, True, None),
    ("streaming, silent 16 s", {"state": "streaming", "updated_at": NOW - 16}, False, "hung"),
    ("paused, silent 60 s", {"state": "paused", "updated_at": NOW - 60}, True, "hung"),
    ("retrying waits silently", {"state": "retrying", "updated_at": NOW - 60}, False, None),
    (
        "retrying is not ready",
        {"state": "retrying", "updated_at": NOW - 1, "error": "broker down"},
        True,
        "not streaming yet (broker down)",
    ),
    ("starting is alive", {"state": "starting", "updated_at": 0}, False, None),
    ("starting is not ready", {"state": "starting", "updated_at": 0}, True, "not streaming"),
    (
        "failed",
        {"state": "failed", "updated_at": NOW, "error": "wal_level is replica"},
        False,
        "state failed: wal_level is replica",
    ),
    ("stopped", {"state": "stopped", "updated_at": NOW}, False, "state stopped"),
]


@pytest.mark.parametrize(("case", "status", "ready", "expected"), CASES, ids=[c[0] for c in CASES])
def test_judge(case: str, status: dict[str, Any] | None, ready: bool, expected: str | None) -> None:
    why = health.judge(status, NOW, ready=ready)
    if expected is None:
        assert why is None, case
    else:
        assert why is not None and expected in why, (case, why)


def test_max_age_is_the_bound() -> None:
    status = {"state": "streaming", "updated_at": NOW - 5}
    assert health.judge(status, NOW, ready=False, max_age_s=6) is None
    assert "hung" in (health.judge(status, NOW, ready=False, max_age_s=4) or "")


def test_the_command_reads_the_file_and_exits_by_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "status.json"
    argv = ["health", "--status-file", str(path), "--ready"]
    assert cli.main(argv) == 1
    assert "no status file yet" in capsys.readouterr().out
    write_status(path, Status(connector="c", slot="s", database="d", state="streaming"))
    assert cli.main(argv) == 0  # write_status stamps updated_at now
    assert "healthy" in capsys.readouterr().out
    write_status(path, Status(connector="c", slot="s", database="d", state="failed", error="x"))
    began = time.monotonic()
    assert cli.main([*argv, "--wait-s", "30"]) == 1
    assert time.monotonic() - began < 5, "a failed connector is not waited for"
    assert "state failed: x" in capsys.readouterr().out
