"""Client of the Flink JobManager REST API: jobs, checkpoints, metrics, savepoints, cancel.

Endpoints (Flink 2.x): ``GET /jobmanager/config``, ``GET /jobs/overview``, ``GET /jobs/{id}``,
``GET /jobs/{id}/config``, ``GET /jobs/{id}/checkpoints``, ``GET /jobs/{id}/exceptions``,
``GET /jobs/{id}/metrics``, ``GET /jobs/{id}/vertices/{v}/subtasks/metrics``,
``POST /jobs/{id}/stop`` then ``GET /jobs/{id}/savepoints/{trigger}``,
``PATCH /jobs/{id}?mode=cancel``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from datamesh.errors import TerminalError, TransientError

ACTIVE_STATES = frozenset(
    {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING"}
)


@dataclass(frozen=True)
class JobSummary:
    """One row of ``/jobs/overview``."""

    job_id: str
    name: str
    state: str
    start_time_ms: int
    end_time_ms: int

    @property
    def active(self) -> bool:
        """True while the job runs or may run again (not FINISHED/CANCELED/FAILED)."""
        return self.state in ACTIVE_STATES


class JobManager:
    """One Flink cluster's REST endpoint."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = requests.Session()

    def jobs(self) -> list[JobSummary]:
        """Every job the cluster remembers, newest first."""
        rows = self.get("/jobs/overview").get("jobs", [])
        out = [
            JobSummary(
                r["jid"], r["name"], r["state"], int(r["start-time"]), int(r.get("end-time", -1))
            )
            for r in rows
        ]
        return sorted(out, key=lambda j: j.start_time_ms, reverse=True)

    def latest(self, name: str) -> JobSummary | None:
        """The newest job called ``name`` (an active one wins over finished ones)."""
        named = [j for j in self.jobs() if j.name == name]
        active = [j for j in named if j.active]
        candidates = active or named
        return candidates[0] if candidates else None

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON document; 404 is a :class:`TerminalError`, transport errors transient."""
        resp = self._request("GET", path, params=params)
        return dict(resp.json())

    def cluster_config(self) -> dict[str, str]:
        """The cluster's configuration (``GET /jobmanager/config``) by key."""
        rows = self._request("GET", "/jobmanager/config").json()
        return {str(r["key"]): str(r["value"]) for r in rows}

    def metrics(self, job_id: str, names: list[str]) -> dict[str, float]:
        """Job-level metrics (e.g. ``numRestarts``) by name."""
        rows = self._request(
            "GET", f"/jobs/{job_id}/metrics", params={"get": ",".join(names)}
        ).json()
        return {r["id"]: float(r["value"]) for r in rows}

    def vertex_metric_ids(self, job_id: str, vertex_id: str) -> list[str]:
        """Names of the metrics a vertex's subtasks report."""
        rows = self._request("GET", f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics").json()
        return [r["id"] for r in rows]

    def vertex_metric_sums(self, job_id: str, vertex_id: str, names: list[str]) -> dict[str, float]:
        """Metrics of a vertex summed over its subtasks."""
        if not names:
            return {}
        rows = self._request(
            "GET",
            f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics",
            params={"get": ",".join(names), "agg": "sum"},
        ).json()
        return {r["id"]: float(r.get("sum", 0.0)) for r in rows}

    def stop_with_savepoint(
        self, job_id: str, target_dir: str | None = None, timeout_s: float = 120.0
    ) -> str:
        """Stop ``job_id`` with a savepoint (no drain); return the savepoint's location."""
        body: dict[str, Any] = {"drain": False}
        if target_dir:
            body["targetDirectory"] = target_dir
        trigger = self._request("POST", f"/jobs/{job_id}/stop", json=body).json()["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = self.get(f"/jobs/{job_id}/savepoints/{trigger}")
            if info.get("status", {}).get("id") == "COMPLETED":
                operation = info.get("operation") or {}
                if "location" in operation:
                    return str(operation["location"])
                raise TerminalError(
                    f"stop-with-savepoint of job {job_id} failed: "
                    f"{_first_line(operation.get('failure-cause', {}))}",
                    fix="see the JobManager log; the job keeps running when the savepoint fails",
                )
            time.sleep(0.3)
        raise TransientError(
            f"stop-with-savepoint of job {job_id} did not finish in {timeout_s:.0f}s",
            fix="check /jobs/{id}/checkpoints; retry",
        )

    def cancel(self, job_id: str) -> None:
        """Cancel ``job_id`` (no savepoint); finished jobs are left alone."""
        self._request("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"}, ok=(202, 404, 409))

    def wait_for_end(self, job_id: str, timeout_s: float = 60.0) -> str:
        """Wait until the job is no longer active; return its final state."""
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            state = str(self.get(f"/jobs/{job_id}").get("state"))
            if state not in ACTIVE_STATES:
                return state
            time.sleep(0.3)
        raise TransientError(
            f"job {job_id} still {state} after {timeout_s:.0f}s", fix="check the JobManager log"
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (),
    ) -> requests.Response:
        try:
            resp = self._http.request(
                method, f"{self.url}{path}", params=params, json=json, timeout=30
            )
        except requests.RequestException as exc:
            raise TransientError(
                f"Flink REST {self.url} did not answer: {exc}",
                fix="run `mesh up` or check MESH_FLINK_REST_URL",
            ) from exc
        if resp.status_code >= 400 and resp.status_code not in ok:
            error = TransientError if resp.status_code >= 500 else TerminalError
            raise error(
                f"Flink REST {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}",
                fix="check the JobManager log",
            )
        return resp


def _first_line(cause: dict[str, Any]) -> str:
    text = str(cause.get("stack-trace") or cause.get("class") or cause)
    return text.strip().splitlines()[0] if text.strip() else "unknown cause"
