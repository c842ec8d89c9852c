"""The platform's one process helper: start, probe and stop plain OS processes (the embedded
stack's servers, CDC supervisors and connectors, `dagster dev`), by psutil where it can."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from datamesh import endpoints
from datamesh.errors import StackError
from datamesh.polling import poll


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``host:port`` now (connections in TIME_WAIT left by
    a stopped server do not count: servers bind with ``SO_REUSEADDR``, as this probe does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_free_soon(port: int, seconds: float = 10.0) -> bool:
    """True when ``port`` is free now or within ``seconds``: sockets of a process killed a
    moment ago (connections still closing, an outgoing client that happened to get the port as
    its ephemeral one) release it shortly, and moving a restarted server would cut its clients
    off for good."""
    return poll(lambda: port_free(port), seconds) is not None


def choose_ports(
    recorded: Sequence[int],
    roles: Sequence[str],
    is_free: Callable[[int], bool] = port_free_soon,
    fresh: Callable[[], int] = free_port,
) -> tuple[list[int], list[str]]:
    """One port per role: the ``recorded`` one at the same position when it is free, else a
    fresh one, with a line saying which recorded port was taken and where the role moved.

    Keeping the recorded ports keeps a restarted component's addresses, so clients pointed at
    them (a console consumer, kcat, a Flink job) reconnect instead of being cut off.
    """
    chosen: list[int] = []
    notes: list[str] = []
    for index, role in enumerate(roles):
        old = recorded[index] if index < len(recorded) else None
        if old and old not in chosen and is_free(old):
            chosen.append(old)
            continue
        new = fresh()
        for _ in range(100):  # never hand out a port another role keeps or wants back
            if new not in chosen and new not in recorded:
                break
            new = fresh()
        chosen.append(new)
        if old:
            notes.append(f"{role} port {old} was taken: now on {new} (clients must switch)")
    return chosen, notes


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def spawn(
    argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log``; return its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=endpoints.child_environment(env),
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def alive(pid: int | None) -> bool:
    """True when ``pid`` is a running process (zombies count as dead)."""
    if not pid:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop_pid(pid: int | None, timeout: float = 30.0) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL whatever is left after ``timeout``."""
    if not alive(pid):
        return
    assert pid is not None
    _signal_group(pid, signal.SIGTERM)
    if not poll(lambda: _gone(pid), timeout):
        _signal_group(pid, signal.SIGKILL)
        poll(lambda: _gone(pid), 10, interval_s=0.1)


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a child of ours is reaped first, else it stays a zombie)."""
    _reap(pid)
    return not alive(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children, grandchildren, ...)."""
    try:
        return [int(child.pid) for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def rss_kb(pids: list[int]) -> int:
    """Resident memory of ``pids`` together, in KiB (processes that vanished count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += int(psutil.Process(pid).memory_info().rss) // 1024
    return total


def log_tail(log: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    if not log.exists():
        return ""
    with log.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


_FAILURE_MARKERS = (" ERROR ", "FATAL", "Exception:", "Error:", "error:")


def failure_excerpt(log: Path, lines: int = 20) -> str:
    """The first error lines of ``log`` (the cause) followed by its last ``lines`` lines."""
    if not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()
    first = [line for line in text if any(m in line for m in _FAILURE_MARKERS)][:3]
    tail = text[-lines:]
    head = [line for line in first if line not in tail]
    return "\n".join([*head, "...", *tail] if head else tail)


def wait_until(
    component: str,
    probe: Callable[[], bool],
    deadline_s: float,
    log: Path,
    pid: int | None = None,
    fix: str = "",
) -> float:
    """Poll ``probe`` until it is true; return seconds waited.

    Raises :class:`StackError` with the log tail when the deadline passes or ``pid`` dies.
    """
    start = time.monotonic()

    def ready() -> bool:
        if probe():
            return True
        if pid is not None and not alive(pid):
            raise StackError(
                component,
                "the process exited during start-up",
                fix or f"read {log}",
                failure_excerpt(log),
            )
        return False

    if poll(ready, deadline_s, interval_s=0.3):
        return time.monotonic() - start
    raise StackError(
        component, f"not ready after {deadline_s:.0f}s", fix or f"read {log}", failure_excerpt(log)
    )
