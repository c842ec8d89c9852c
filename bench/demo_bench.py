"""``make dev``'s first two minutes, measured (area ``demo``, issue 14).

``mesh dev`` runs from a fresh ``MESH_HOME`` (its own stack on free ports, the demo seeded, the
generator at its default rate, ``dagster dev``) and nothing is clicked. From the moment the UI
serves the three demo domains, only the Dagster GraphQL API is read until the data moves, as
:func:`missing` defines it: every Iceberg sink's row count risen between two of its
materializations, a fresh observation on every CDC asset, no failing check and rows in the
analytics serving table.

Figures:

- ``startup_s``: from ``mesh dev`` to the UI serving the demo (stack start included).
- ``data_moving_after_ui_s``: from the UI to the data moving — the issue's "within two
  minutes" (floor: below 120 s).
- ``start_run_s``: the automation sensor's run that starts the streaming products (CDC
  connectors, Flink jobs, their checks), from its creation to its end; baseline
  ``start_run_steps_s``: the time its steps spent in the platform's own code, so the ratio
  ``ratio_vs_start_run_steps`` (steps / run) is the share of that run that was deploying
  rather than waiting to be launched or handing over between steps.
- ``sink_run_launch_median_s``: a topic sensor's sink run from created to started (the queue
  and a Python process loading the code location); ``sink_run_median_s``: from started to
  ended (reading the topic and committing to Iceberg); ``sink_runs_count``: how many finished.

The live test (``tests/integration/test_demo_live.py``) drives the same path with
:func:`dev_run` and :func:`missing`; it asserts that the data moves and prints how long it took,
this module records it against the floor.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import requests

from datamesh.checks.evaluate import checks_for
from datamesh.demo import database_dsn
from datamesh.process import free_port, wait_until
from datamesh.specs import load_products
from datamesh.specs.product import DataProduct
from datamesh.stack.paths import PROJECT_ROOT
from mesh_assets import DOMAINS_DIR
from mesh_assets.checks import blocking
from mesh_assets.policy import STREAMING_KINDS
from sensors.topic_sensor import sensor_name, sinks_fed_by

MESH = str(Path(sys.executable).parent / "mesh")
MEASURE_S = 600.0  # a hang, not a speed: how long the data is waited for
STARTUP_S = 600.0
SERVING = ("serving", "public.productions_started_daily")  # the aggregate's PostgreSQL table


class GraphQLError(RuntimeError):
    """The Dagster GraphQL API answered with errors."""


@dataclass
class DevRun:
    """A running ``mesh dev``: its UI, its environment and when the UI came up."""

    url: str
    env: dict[str, str]
    home: Path
    ui_up_wall: float  # time.time() when the UI served the demo
    ui_up: float  # time.monotonic() then
    startup_s: float  # from `mesh dev` to the UI serving the demo (stack start included)


def graphql(url: str, query: str, **variables: Any) -> Any:
    """``data`` of one GraphQL query (raises :class:`GraphQLError` on errors)."""
    reply = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    reply.raise_for_status()
    body = reply.json()
    if body.get("errors"):
        raise GraphQLError(json.dumps(body["errors"])[:2000])
    return body["data"]


def _demo_loaded(url: str, products: Sequence[DataProduct]) -> bool:
    try:
        nodes = graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    except (requests.RequestException, GraphQLError, KeyError, TypeError, ValueError):
        return False
    return {p.id.replace(".", "/") for p in products} <= {
        "/".join(n["assetKey"]["path"]) for n in nodes
    }


@contextmanager
def dev_run(products: Sequence[DataProduct], rate: str | None = None) -> Iterator[DevRun]:
    """``mesh dev`` from a fresh ``MESH_HOME`` on a free port, with no other ``MESH_*``
    setting; ``mesh down`` (and the home removed) afterwards."""
    parent = PROJECT_ROOT / ".mesh" / "test-homes"
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="demo-live-", dir=parent))
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    env.pop("DAGSTER_HOME", None)
    env["MESH_HOME"] = str(home)
    port, log = free_port(), home / "mesh-dev.log"
    command = [MESH, "dev", "--port", str(port), *(["--rate", rate] if rate else [])]
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("mesh dev", lambda: _demo_loaded(url, products), STARTUP_S, log, proc.pid)
        now = time.monotonic()
        yield DevRun(url, env, home, time.time(), now, now - started)
    finally:
        down = subprocess.run(
            [MESH, "down"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        print(down.stdout, down.stderr, flush=True)
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
_RUNS = """{ runsOrError(limit: 200) { ... on Runs { results {
  runId status creationTime startTime endTime assetSelection { path }
  stepStats { stepKey startTime endTime } } } } }"""


def row_counts(url: str, path: list[str]) -> list[int]:
    """``dagster/row_count`` of each materialization of ``path``, oldest first."""
    asset = graphql(url, _ASSET, path=path)["assetOrError"]
    counts = [
        next(
            (e["intValue"] for e in m["metadataEntries"] if e["label"] == "dagster/row_count"), None
        )
        for m in sorted(asset.get("assetMaterializations") or [], key=lambda m: m["timestamp"])
    ]
    return [c for c in counts if c is not None]


def observed_at(url: str, path: list[str]) -> float:
    """When ``path`` was last observed (epoch seconds; 0 when never)."""
    asset = graphql(url, _ASSET, path=path)["assetOrError"]
    observations = asset.get("assetObservations") or []
    return float(observations[0]["timestamp"]) / 1000 if observations else 0.0


def failing_checks(url: str) -> list[str]:
    """``<asset> <check>: <description>`` of every check whose latest execution failed."""
    failing = []
    for node in graphql(url, _CHECKS)["assetNodes"]:
        for check in (node.get("assetChecksOrError") or {}).get("checks") or []:
            path = node["assetKey"]["path"]
            runs = graphql(url, _EXECUTION, path=path, check=check["name"])
            for execution in runs["assetCheckExecutions"]:
                if execution["status"] in ("FAILED", "EXECUTION_FAILED"):
                    why = (execution["evaluation"] or {}).get("description")
                    failing.append(f"{'/'.join(path)} {check['name']}: {why}")
    return failing


def server_dsn(env: dict[str, str]) -> str:
    """The stack's PostgreSQL, as ``mesh status`` reports it."""
    status = subprocess.run(
        [MESH, "status", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return str(json.loads(status.stdout)["postgres_dsn"])


def serving_rows(dsn: str) -> int:
    """Rows of the analytics aggregate's PostgreSQL serving table (0 while it is missing)."""
    database, table = SERVING
    try:
        with psycopg2.connect(database_dsn(dsn, database)) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            return int(cur.fetchone()[0])
    except psycopg2.Error:
        return 0


def missing(
    run: DevRun, dsn: str, products: Sequence[DataProduct], first_only: bool = False
) -> list[str]:
    """What is not there yet of "data moving": rising sink row counts, fresh CDC
    observations, rows in the analytics serving table, no failing check. With ``first_only``
    it stops at the first thing missing: polling then costs the machine (and the webserver
    it measures) little until the costly part, one query per check, can pass."""
    url, out = run.url, []
    for p in products:
        path = p.id.split(".")
        if p.kind == "iceberg_sink":
            counts = row_counts(url, path)
            if len(counts) < 2 or counts[-1] <= counts[0]:
                out.append(f"{p.id} row counts not rising yet: {counts}")
        elif p.kind == "cdc" and observed_at(url, path) <= run.ui_up_wall:
            out.append(f"{p.id} not observed since the UI came up")
        if out and first_only:
            return out
    if serving_rows(dsn) == 0:  # the analytics aggregate reaches PostgreSQL too
        out.append(f"{'.'.join(SERVING)} has no row yet")
    if out and first_only:
        return out
    return out + [f"failing check {line}" for line in failing_checks(url)]


def await_moving(run: DevRun, products: Sequence[DataProduct]) -> tuple[float, list[str]]:
    """Poll :func:`missing` until nothing is (or :data:`MEASURE_S` passes): seconds after the
    UI came up, and everything still missing then (empty: the data moves)."""
    dsn, left = server_dsn(run.env), ["nothing checked yet"]
    while left and time.monotonic() - run.ui_up < MEASURE_S:
        left = missing(run, dsn, products, first_only=True)
        if left:
            time.sleep(2)
    elapsed = time.monotonic() - run.ui_up
    return elapsed, missing(run, dsn, products) if left else []


def runs(run: DevRun) -> list[dict[str, Any]]:
    """Every Dagster run so far, oldest first (status, times, assets, step times)."""
    return list(reversed(graphql(run.url, _RUNS)["runsOrError"]["results"]))


_MESSAGES = """query ($id: ID!) { logsForRun(runId: $id, limit: 5000) {
  ... on EventConnection { events { ... on MessageEvent { message } } } } }"""


def run_messages(run: DevRun, run_id: str) -> list[str]:
    """Every message of one run's event log (the platform's own log lines included)."""
    events = graphql(run.url, _MESSAGES, id=run_id)["logsForRun"]["events"]
    return [e["message"] for e in events if e.get("message")]


def start_run(found: Sequence[dict[str, Any]], streaming: set[str]) -> dict[str, Any] | None:
    """The first finished run selecting a streaming product: the automation sensor's run that
    starts the connectors and Flink jobs."""
    for r in found:
        selected = {"/".join(a["path"]) for a in r["assetSelection"] or []}
        if r["startTime"] and r["endTime"] and selected & streaming:
            return r
    return None


_TICKS = """query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  ... on Sensor { sensorState { ticks(limit: 100) { timestamp status runIds skipReason } } } } }"""


def sensor_ticks(run: DevRun, sensor: str) -> str:
    """One sensor's ticks so far: seconds after the UI came up, ``*`` where it requested
    runs (``.`` where it skipped) — how long a sink waited for its sensor."""
    selector = {
        "repositoryLocationName": "datamesh",
        "repositoryName": "__repository__",
        "sensorName": sensor,
    }
    found = graphql(run.url, _TICKS, selector=selector)["sensorOrError"]
    ticks = sorted((found.get("sensorState") or {}).get("ticks") or [],
                   key=lambda t: t["timestamp"])  # fmt: skip
    told = [f"{t['timestamp'] - run.ui_up_wall:+.0f}{'*' if t['runIds'] else '.'}" for t in ticks]
    skips = {t["skipReason"] for t in ticks if t["skipReason"]}
    return " ".join(told) + "".join(f"\n      skipped: {why}" for why in sorted(skips))


_HISTORY = """
query ($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 50) {
    status timestamp evaluation { description }
  }
}"""


def failed_checks(run: DevRun, product: DataProduct) -> list[str]:
    """Each failed evaluation of ``product``'s blocking checks so far (seconds after the UI
    came up, check, why): a failing blocking check holds the sinks it feeds back."""
    path, out = product.id.split("."), []
    for check in checks_for(product):
        if not blocking(product, check):
            continue
        for e in graphql(run.url, _HISTORY, path=path, check=check)["assetCheckExecutions"]:
            if e["status"] in ("FAILED", "EXECUTION_FAILED"):
                why = (e["evaluation"] or {}).get("description") or ""
                out.append(f"{e['timestamp'] - run.ui_up_wall:+.0f}s {check}: {why[:120]}")
    return sorted(out)


def timeline(run: DevRun, products: Sequence[DataProduct]) -> str:
    """Each run so far: seconds after the UI came up (created, started, ended), status and
    assets; the steps of a run of many; the ticks of each topic sensor feeding an Iceberg sink
    and the failed blocking checks holding it back — where the time went."""
    lines = []
    for r in runs(run):
        at = [f"{(x or 0) - run.ui_up_wall:+.0f}s" if x else "-" for x in
              (r["creationTime"], r["startTime"], r["endTime"])]  # fmt: skip
        assets = ",".join("/".join(a["path"]) for a in r["assetSelection"] or [])
        lines.append(f"  {' '.join(at):22} {r['status']:9} {assets}")
        if len(r["stepStats"] or []) > 1:  # a run of many steps: each step's span
            for s in sorted(r["stepStats"], key=lambda s: s["startTime"] or 0):
                span = [f"{x - run.ui_up_wall:+.1f}s" if x else "-" for x in
                        (s["startTime"], s["endTime"])]  # fmt: skip
                lines.append(f"      {' '.join(span):16} {s['stepKey']}")
    for p in products:
        if any(s.kind == "iceberg_sink" for s in sinks_fed_by(p, products)):
            lines.append(f"  ticks {sensor_name(p)}: {sensor_ticks(run, sensor_name(p))}")
            lines += [f"      failed {line}" for line in failed_checks(run, p)]
    return "\n".join(lines)


def run_figures(found: Sequence[dict[str, Any]], streaming: set[str]) -> dict[str, float]:
    """The start run's and the sink runs' figures from the runs :func:`runs` returns: the
    first finished run selecting a streaming product is the start run; runs selecting only
    other assets are sink runs."""
    done = [r for r in found if r["startTime"] and r["endTime"]]
    selected = [{"/".join(a["path"]) for a in r["assetSelection"] or []} for r in done]
    start = start_run(done, streaming)
    sinks = [r for r, s in zip(done, selected, strict=True) if s and not s & streaming]
    figures: dict[str, float] = {}
    if start is not None:
        steps = sum(
            s["endTime"] - s["startTime"]
            for s in start["stepStats"]
            if s["startTime"] and s["endTime"]
        )
        figures["start_run_s"] = round(start["endTime"] - start["creationTime"], 1)
        figures["start_run_steps_s"] = round(steps, 1)
        figures["ratio_vs_start_run_steps"] = round(steps / figures["start_run_s"], 3)
    if sinks:
        launch = statistics.median(r["startTime"] - r["creationTime"] for r in sinks)
        figures["sink_run_launch_median_s"] = round(launch, 1)
        figures["sink_run_median_s"] = round(
            statistics.median(r["endTime"] - r["startTime"] for r in sinks), 1
        )
        figures["sink_runs_count"] = len(sinks)
    return figures


def run() -> dict[str, Any]:
    """Figures of the demo area (a flat dict; see the module docstring)."""
    products = load_products(DOMAINS_DIR)
    streaming = {p.id.replace(".", "/") for p in products if p.kind in STREAMING_KINDS}
    with dev_run(products) as dev:
        elapsed, left = await_moving(dev, products)
        found = runs(dev)
        print(
            f"demo: data moving {elapsed:.1f}s after the UI\n{timeline(dev, products)}", flush=True
        )
    if left:
        raise RuntimeError(f"demo: the data did not move in {MEASURE_S:.0f}s: {left}")
    return {
        "startup_s": round(dev.startup_s, 1),
        "data_moving_after_ui_s": round(elapsed, 1),
        **run_figures(found, streaming),
    }
