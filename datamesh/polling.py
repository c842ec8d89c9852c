"""The platform's one polling loop: ask until an answer comes or the time is up.

Every wait on something asynchronous — a topic's metadata after creating it, a config change
reaching the broker, a connector reaching ``streaming``, a server answering on its port, a Flink
job reaching ``RUNNING`` — is this loop with its own probe. The probe returns the answer (any
truthy value) or something falsy to be asked again, and raises to stop early (a process that
died, a job that failed); the caller turns ``None`` into the error that names what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(probe: Callable[[], T], timeout_s: float, interval_s: float = 0.2) -> T | None:
    """The first truthy result of ``probe``, asked every ``interval_s`` seconds (at least once,
    and once more at the deadline), or None when ``timeout_s`` passes without one."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if answer:
            return answer
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(interval_s, remaining))
