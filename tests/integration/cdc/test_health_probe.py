"""The health probe of the deployment manifests against a real connector process (real stack).

``python -m datamesh.cdc health --status-file ...`` — what the Kubernetes probes and the systemd
unit's ``ExecStartPost=`` run — says ready once the connector streams, unhealthy ("hung") when
its loop stops writing (SIGSTOP), healthy again after SIGCONT, and unhealthy once it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.cdc.conftest import RunningConnector, SourceDb

pytestmark = pytest.mark.integration


def _probe(status_file: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "datamesh.cdc", "health", "--status-file", str(status_file)]
    return subprocess.run([*argv, *flags], capture_output=True, text=True, timeout=120)


def test_the_probe_follows_the_connectors_life(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    source_db.sql("CREATE TABLE public.movies (id bigint PRIMARY KEY, title text)")
    source_db.sql("ALTER TABLE public.movies REPLICA IDENTITY FULL")
    proc = connector(("public.movies",)).start()
    ready = _probe(proc.status_file, "--ready", "--wait-s", "60")
    assert ready.returncode == 0, ready.stdout + proc.log.read_text()[-2000:]

    os.kill(proc.pid, signal.SIGSTOP)  # a hung loop: the process lives, the status ages
    try:
        time.sleep(3.0)
        hung = _probe(proc.status_file, "--max-age-s", "2")
        assert hung.returncode == 1 and "hung" in hung.stdout, hung.stdout
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    again = _probe(proc.status_file, "--ready", "--max-age-s", "2", "--wait-s", "30")
    assert again.returncode == 0, again.stdout

    proc.stop()
    stopped = _probe(proc.status_file)
    assert stopped.returncode == 1 and "state stopped" in stopped.stdout, stopped.stdout
