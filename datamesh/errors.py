"""One error root for the platform.

Every error says what object is wrong, what was expected, what was found and how to fix it.
``TerminalError`` needs a human; ``TransientError`` may succeed on retry. Library errors are
wrapped at the resource boundary with ``raise ... from exc`` so the cause stays attached.
"""

from __future__ import annotations


class MeshError(Exception):
    """Root of every platform error; ``retryable`` tells callers whether to try again."""

    retryable: bool = False

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} — fix: {fix}" if fix else message)


class TerminalError(MeshError):
    """A problem that will not go away by retrying: bad input, drift, an unsafe change."""


class TransientError(MeshError):
    """A problem that may clear up: a service not reachable yet, a timeout."""

    retryable = True


class SpecError(TerminalError):
    """A data product declaration is invalid; names the file, the field (and line) and the fix."""

    def __init__(
        self, file: str, field: str, problem: str, fix: str, line: int | None = None
    ) -> None:
        self.file = file
        self.field = field
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {problem}", fix=fix)


class DriftError(TerminalError):
    """A running resource differs from its declaration; the platform never silently changes it."""

    def __init__(self, obj: str, setting: str, expected: object, actual: object, fix: str) -> None:
        self.obj = obj
        self.setting = setting
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{obj} has {setting}={actual!r}, the declaration says {expected!r}", fix=fix
        )


class StackError(TerminalError):
    """An embedded component failed to start or stop; carries the tail of its log."""

    def __init__(self, component: str, cause: str, fix: str, log_tail: str = "") -> None:
        self.component = component
        self.cause = cause
        self.log_tail = log_tail
        tail = f"\n--- last lines of the {component} log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{component} failed: {cause}{tail}", fix=fix)


class ServiceUnavailable(TransientError):
    """A component's endpoint is not configured or does not answer."""
