"""What every embedded component provides to ``mesh up`` / ``mesh down`` / ``mesh status``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from datamesh.endpoints import ENV_VARS, Record
from datamesh.process import choose_ports, free_port, stop_pid


class Component(ABC):
    """One embedded service. ``start`` only spawns; ``ready`` is polled until it says yes."""

    name: str
    status_key: str  # key in ``mesh status --json``
    deadline_s: float = 60.0
    fix: str = ""

    def __init__(self, home: Path) -> None:
        self.home = home / self.name
        self.recorded_ports: list[int] = []  # of the previous start (``mesh up`` sets them)
        self.notes: list[str] = []  # lines for ``mesh up``, e.g. a recorded port was taken

    def ports(self, roles: Sequence[str], fresh: Callable[[], int] = free_port) -> list[int]:
        """A port per role, in ``Record.ports`` order: the recorded ones where still free."""
        chosen, notes = choose_ports(self.recorded_ports, roles, fresh=fresh)
        self.notes.extend(notes)
        return chosen

    @property
    def env_var(self) -> str:
        """Set it to use an existing deployment instead of the embedded one."""
        return ENV_VARS[self.name]

    @abstractmethod
    def start(self) -> Record:
        """Prepare files and spawn the processes; do not wait for readiness."""

    @abstractmethod
    def ready(self, endpoint: str) -> bool:
        """True when the service at ``endpoint`` really serves requests."""

    def stop(self, record: Record) -> None:
        """Stop every process of ``record`` (last started first)."""
        for pid in reversed(record.pids):
            stop_pid(pid)

    def log_path(self) -> Path:
        """The log whose tail is shown when start-up fails."""
        return self.home / f"{self.name}.log"
