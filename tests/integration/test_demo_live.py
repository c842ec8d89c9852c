"""``make dev``'s path from a fresh start: data moves with nothing clicked.

The fixture runs ``mesh dev`` (what ``make dev`` runs after ``make install``) with a fresh
``MESH_HOME`` and no other ``MESH_*`` setting: it starts its own stack, seeds the demo, starts
the generator at its default rate and execs ``dagster dev``. Nothing is clicked: from the
moment the UI serves the three demo domains, the test only reads the Dagster GraphQL API —
the sensors (on by default) start the streaming products and keep the sinks current. It must
see, at one moment, every Iceberg sink's row count risen between two materializations, a fresh
observation on every CDC asset, no failing check and rows in the analytics serving table.

How long that takes is printed, not asserted: the issue's two minutes is a figure to measure,
not a timed test (on this 2-core machine it took 185 s quiet, 217-249 s under load: issue 14
keeps it open). :data:`MEASURE_S` only bounds a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from datamesh.demo import database_dsn
from datamesh.process import alive, free_port, wait_until
from datamesh.specs import load_products
from datamesh.stack.paths import PROJECT_ROOT
from mesh_assets import DOMAINS_DIR

pytestmark = pytest.mark.integration

MEASURE_S = 600.0  # a hang, not a speed: how long the test keeps polling
PRODUCTS = load_products(DOMAINS_DIR)
CDC = [p.id.split(".") for p in PRODUCTS if p.kind == "cdc"]
SINKS = [p.id.split(".") for p in PRODUCTS if p.kind == "iceberg_sink"]
MESH = str(Path(sys.executable).parent / "mesh")


@dataclass
class DevRun:
    url: str
    env: dict[str, str]
    ui_up_wall: float  # time.time() when the UI served the demo
    ui_up: float  # time.monotonic() then
    startup_s: float  # from `mesh dev` to the UI serving the demo (stack start included)


def _graphql(url: str, query: str, **variables: Any) -> Any:
    reply = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    reply.raise_for_status()
    body = reply.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _demo_loaded(url: str) -> bool:
    try:
        nodes = _graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    except (requests.RequestException, KeyError, TypeError, ValueError, AssertionError):
        return False
    return {p.id.replace(".", "/") for p in PRODUCTS} <= {
        "/".join(n["assetKey"]["path"]) for n in nodes
    }


@pytest.fixture(scope="module")
def mesh_dev() -> Iterator[DevRun]:
    """``mesh dev`` from a fresh ``MESH_HOME`` on a free port; ``mesh down`` afterwards."""
    parent = PROJECT_ROOT / ".mesh" / "test-homes"
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="demo-live-", dir=parent))
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    env.pop("DAGSTER_HOME", None)
    env["MESH_HOME"] = str(home)
    port, log = free_port(), home / "mesh-dev.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [MESH, "dev", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("mesh dev", lambda: _demo_loaded(url), 600, log, proc.pid)
        print(f"\n[demo] UI up {time.monotonic() - started:.1f}s after `mesh dev`")
        yield DevRun(url, env, time.time(), time.monotonic(), time.monotonic() - started)
    finally:
        down = subprocess.run(
            [MESH, "down"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        print(down.stdout, down.stderr)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)


_ASSET = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 50) {
        timestamp
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
      assetObservations(limit: 1) { timestamp }
    }
  }
}"""
_CHECKS = "{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }"  # noqa: E501
_EXECUTION = """
query ($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 1) {
    status
    evaluation { description }
  }
}"""


def _row_counts(url: str, path: list[str]) -> list[int]:
    """``dagster/row_count`` of each materialization of ``path``, oldest first."""
    asset = _graphql(url, _ASSET, path=path)["assetOrError"]
    counts = [
        next(
            (e["intValue"] for e in m["metadataEntries"] if e["label"] == "dagster/row_count"), None
        )
        for m in sorted(asset.get("assetMaterializations") or [], key=lambda m: m["timestamp"])
    ]
    return [c for c in counts if c is not None]


def _observed_at(url: str, path: list[str]) -> float:
    """When ``path`` was last observed (epoch seconds; 0 when never)."""
    asset = _graphql(url, _ASSET, path=path)["assetOrError"]
    observations = asset.get("assetObservations") or []
    return float(observations[0]["timestamp"]) / 1000 if observations else 0.0


def _failing_checks(url: str) -> list[str]:
    """``<asset> <check>: <description>`` of every check whose latest execution failed."""
    failing = []
    for node in _graphql(url, _CHECKS)["assetNodes"]:
        for check in (node.get("assetChecksOrError") or {}).get("checks") or []:
            path = node["assetKey"]["path"]
            runs = _graphql(url, _EXECUTION, path=path, check=check["name"])
            for execution in runs["assetCheckExecutions"]:
                if execution["status"] in ("FAILED", "EXECUTION_FAILED"):
                    why = (execution["evaluation"] or {}).get("description")
                    failing.append(f"{'/'.join(path)} {check['name']}: {why}")
    return failing


def _server_dsn(env: dict[str, str]) -> str:
    """The stack's PostgreSQL, as ``mesh status`` reports it."""
    status = subprocess.run(
        [MESH, "status", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return str(json.loads(status.stdout)["postgres_dsn"])


def _serving_rows(dsn: str) -> int:
    """Rows of the analytics aggregate's PostgreSQL serving table (0 while it is missing)."""
    try:
        with psycopg2.connect(database_dsn(dsn, "serving")) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.productions_started_daily")
            return int(cur.fetchone()[0])
    except psycopg2.Error:
        return 0


def _missing(run: DevRun, dsn: str) -> list[str]:
    """What is not there yet of "data moving": rising sink row counts, fresh CDC
    observations, no failing check, rows in the analytics serving table."""
    url, missing = run.url, []
    for path in SINKS:
        counts = _row_counts(url, path)
        if len(counts) < 2 or counts[-1] <= counts[0]:
            missing.append(f"{'/'.join(path)} row counts not rising yet: {counts}")
    for path in CDC:
        if _observed_at(url, path) <= run.ui_up_wall:
            missing.append(f"{'/'.join(path)} not observed since the UI came up")
    missing += [f"failing check {line}" for line in _failing_checks(url)]
    if _serving_rows(dsn) == 0:  # the analytics aggregate reaches PostgreSQL too
        missing.append("serving.public.productions_started_daily has no row yet")
    return missing


_RUNS = """{ runsOrError(limit: 100) { ... on Runs { results {
  status creationTime startTime endTime assetSelection { path } } } } }"""


def _timeline(run: DevRun) -> str:
    """Each Dagster run so far: seconds after the UI came up (created, started, ended), status
    and assets — where the time went when the window is missed."""
    lines = []
    for r in reversed(_graphql(run.url, _RUNS)["runsOrError"]["results"]):
        at = [f"{(x or 0) - run.ui_up_wall:+.0f}s" if x else "-" for x in
              (r["creationTime"], r["startTime"], r["endTime"])]  # fmt: skip
        assets = ",".join("/".join(a["path"]) for a in r["assetSelection"] or [])
        lines.append(f"  {' '.join(at):22} {r['status']:9} {assets}")
    return "\n".join(lines)


def test_data_moves_with_nothing_clicked(mesh_dev: DevRun) -> None:
    missing, dsn = ["nothing checked yet"], _server_dsn(mesh_dev.env)
    while missing and time.monotonic() - mesh_dev.ui_up < MEASURE_S:
        missing = _missing(mesh_dev, dsn)
        if missing:
            time.sleep(2)
    elapsed = time.monotonic() - mesh_dev.ui_up
    timeline = _timeline(mesh_dev)
    print(f"[demo] startup {mesh_dev.startup_s:.1f}s; data moving {elapsed:.1f}s after the UI")
    print(f"[demo] runs (created, started, ended after the UI came up):\n{timeline}")
    assert not missing, f"after {elapsed:.0f}s:\n" + "\n".join(missing) + "\n" + timeline
    generator = subprocess.run(
        [MESH, "demo", "--status"], env=mesh_dev.env, capture_output=True, text=True
    )
    assert generator.returncode == 0 and '"rate": "5/s"' in generator.stdout, generator.stdout
    pid = json.loads(generator.stdout)["pid"]
    down = subprocess.run([MESH, "down"], env=mesh_dev.env, capture_output=True, text=True)
    assert f"demo generator   stopped   pid {pid}" in down.stdout, down.stdout
    assert not alive(pid)
