"""Start and stop a real ``python -m datamesh.registry`` process for tests and the benchmark."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_LINE = re.compile(r"schema registry listening on (http://\S+)")


class RegistryProcess:
    """One registry server process on a free loopback port, logging to ``log_path``."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_env = env or {}
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start the server and wait until it answers ``GET /``; return its base URL.

        Raises ``TimeoutError`` (with the end of the server log) if it is not ready in time.
        """
        env = {**os.environ, **self.extra_env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._log = self.log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "datamesh.registry",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
        ]
        self._proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.url = self._wait_ready(time.monotonic() + timeout)
        return self.url

    def _wait_ready(self, deadline: float) -> str:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise TimeoutError(f"registry exited with {code}:\n{self.log_tail()}")
            match = READY_LINE.search(self.log_path.read_text(errors="replace"))
            if match and _answers(match.group(1)):
                return match.group(1)
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"registry not ready before the deadline:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after ``timeout`` seconds."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._close_log()

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to flush or clean up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(15.0)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/", timeout=2.0).status_code in (200, 401)  # 401: behind auth
    except requests.RequestException:
        return False
