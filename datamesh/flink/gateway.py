"""Client of the Flink SQL Gateway REST API (v2): sessions, statements and their results.

``POST /v2/sessions`` opens a session with configuration properties, ``POST .../statements``
runs one statement and ``GET .../operations/{op}/result/{token}?rowFormat=JSON`` pages through its
result. A failed statement answers HTTP 500 with the server-side stack trace;
:class:`StatementError` keeps the innermost meaningful cause (Calcite's "From line 2, column 9
..." when there is one).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from datamesh.errors import TerminalError, TransientError

_WRAPPERS = ("SqlGatewayException", "SqlExecutionException", "Failed to fetchResults")
_CAUSE = re.compile(r"^(?:Caused by: )?([\w.$]+(?:Exception|Error)): (.*)$")


@dataclass(frozen=True)
class StatementResult:
    """Rows of a finished statement; ``job_id`` is set for statements that submitted a job."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    job_id: str | None = None


class StatementError(TerminalError):
    """Flink refused a statement; ``cause`` is the innermost message, ``trace`` the whole one."""

    def __init__(self, statement: str, cause: str, exception: str, trace: str) -> None:
        self.statement = statement
        self.cause = cause
        self.exception = exception
        self.trace = trace
        head = statement.strip().splitlines()[0][:120] if statement.strip() else ""
        super().__init__(f"Flink refused `{head}`: {cause}", fix="see the cause above")


def innermost_cause(trace: str) -> tuple[str, str]:
    """(exception class, message) of the most specific cause in a Java stack trace."""
    causes: list[tuple[str, str]] = []
    for line in trace.splitlines():
        match = _CAUSE.match(line.strip().lstrip("<"))
        if match and not any(w in line for w in _WRAPPERS):
            causes.append((match.group(1), match.group(2)))
    if not causes:
        return ("", trace.strip().splitlines()[0] if trace.strip() else "unknown error")
    positioned = [c for c in causes if "From line " in c[1] or " at line " in c[1]]
    return positioned[-1] if positioned else causes[-1]


class SqlGateway:
    """One SQL Gateway, addressed by its REST URL."""

    def __init__(self, url: str, timeout_s: float = 180.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = requests.Session()

    @contextmanager
    def session(self, properties: Mapping[str, str], name: str = "mesh") -> Iterator[Session]:
        """A gateway session configured with ``properties``; closed on exit."""
        body = {"sessionName": name, "properties": dict(properties)}
        handle = self._call("POST", "/v2/sessions", body)["sessionHandle"]
        try:
            yield Session(self, str(handle))
        finally:
            # An idle session also expires on the gateway by itself.
            with contextlib.suppress(requests.RequestException):
                self._http.delete(f"{self.url}/v2/sessions/{handle}", timeout=30)

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            resp = self._http.request(method, f"{self.url}{path}", json=body, timeout=60)
        except requests.RequestException as exc:
            raise TransientError(
                f"Flink SQL Gateway {self.url} did not answer: {exc}",
                fix="run `mesh up`, or set MESH_FLINK_SQL_GATEWAY_URL",
            ) from exc
        if resp.status_code >= 400:
            raise _error(resp, path)
        return dict(resp.json())


class Session:
    """Statements run one after another in one gateway session."""

    def __init__(self, gateway: SqlGateway, handle: str) -> None:
        self.gateway = gateway
        self.handle = handle

    def execute(self, statement: str) -> StatementResult:
        """Run ``statement`` and fetch its whole result; raises :class:`StatementError`."""
        base = f"/v2/sessions/{self.handle}"
        op = self.gateway._call("POST", f"{base}/statements", {"statement": statement})
        uri: str | None = f"{base}/operations/{op['operationHandle']}/result/0?rowFormat=JSON"
        columns: tuple[str, ...] = ()
        rows: list[tuple[Any, ...]] = []
        job_id = None
        deadline = time.monotonic() + self.gateway.timeout_s
        while uri:
            try:
                page = self.gateway._call("GET", uri)
            except StatementError as exc:
                raise StatementError(statement, exc.cause, exc.exception, exc.trace) from None
            if page.get("resultType") == "NOT_READY":
                if time.monotonic() > deadline:
                    raise TransientError(
                        f"statement still running after {self.gateway.timeout_s:.0f}s: "
                        f"{statement[:80]}",
                        fix="check the gateway log",
                    )
                time.sleep(0.1)
                continue
            results = page.get("results") or {}
            columns = tuple(c["name"] for c in results.get("columns", [])) or columns
            rows.extend(tuple(d["fields"]) for d in results.get("data", []))
            job_id = page.get("jobID") or job_id
            uri = None if page.get("resultType") == "EOS" else page.get("nextResultUri")
        return StatementResult(columns, tuple(rows), job_id)


def _error(resp: requests.Response, path: str) -> Exception:
    try:
        errors = [str(e) for e in resp.json().get("errors", [])]
    except ValueError:
        errors = [resp.text]
    trace = "\n".join(errors)
    if resp.status_code >= 500 and "Exception" in trace:
        exception, cause = innermost_cause(trace)
        return StatementError("", cause, exception, trace)
    return TerminalError(
        f"Flink SQL Gateway answered HTTP {resp.status_code} to {path}: {trace[:500]}",
        fix="check the gateway log",
    )
