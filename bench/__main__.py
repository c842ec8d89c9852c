"""``make bench``: start a private embedded stack, measure every area in one run, write
``bench/results.json`` shaped ``{"<area>": {"<figure>_<unit>": value, "ratio_vs_<baseline>": v}}``
(plus ``machine``: the facts of the run, ``measured``: when each area ran), then
``bench/REPORT.md`` and the README's performance section from it (:mod:`bench.report`).

``python -m bench cdc,sink`` (``make bench AREAS=cdc,sink``) measures only those areas; the other
areas' figures stay as they were.

Each area's baseline runs in the same process against the same services right after the
platform's figure, so the ratios compare like with like on this noisy 2-core machine.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine, report
from datamesh import endpoints
from datamesh.stack import stack
from datamesh.stack.paths import PROJECT_ROOT

RESULTS = report.RESULTS


def _registry() -> dict[str, Any]:
    import requests

    from bench import registry_bench

    url = endpoints.endpoint("schema_registry")
    figures = registry_bench.run(url)
    session, count, start = requests.Session(), 500, time.perf_counter()
    for _ in range(count):
        session.get(f"{url}/", timeout=10).raise_for_status()  # the HTTP floor: no store access
    floor = count / (time.perf_counter() - start)
    figures["http_floor_per_s"] = round(floor, 1)
    figures["ratio_vs_http_floor"] = round(figures["id_lookups_http_per_s"] / floor, 3)
    return figures


def _control_plane() -> dict[str, Any]:
    from bench import control_plane_bench

    return control_plane_bench.run(endpoints.endpoint("kafka"))


def _sensor() -> dict[str, Any]:
    from bench import sensor_bench

    return sensor_bench.run(endpoints.endpoint("kafka"))


def _optional(module: str) -> Callable[[], dict[str, Any]]:
    """Areas whose run() returns ``{"<area>": {...}}`` themselves (cdc, flink, sink)."""

    def call() -> dict[str, Any]:
        result: dict[str, Any] = importlib.import_module(module).run()
        return next(iter(result.values()))

    return call


AREAS: dict[str, Callable[[], dict[str, Any]]] = {
    "registry": _registry,
    "control_plane": _control_plane,
    "sensor": _sensor,
}
for _area, _module in (
    ("cdc", "bench.cdc_bench"),
    ("flink", "bench.flink_bench"),
    ("sink", "bench.sink_bench"),
    ("catalog", "bench.catalog_bench"),
    ("checks", "bench.checks_bench"),
    ("scale", "bench.scale_bench"),
):
    if (PROJECT_ROOT / f"{_module.replace('.', '/')}.py").exists():
        AREAS[_area] = _optional(_module)


def _merged(area: str, *modules: str) -> Callable[[], dict[str, Any]]:
    """An area whose figures come from several modules (each present one's ``run()``, a flat
    dict of figures or ``{"<area>": {...}}``), merged into one dict."""

    def call() -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for module in modules:
            if not (PROJECT_ROOT / f"{module.replace('.', '/')}.py").exists():
                continue
            result: dict[str, Any] = importlib.import_module(module).run()
            if set(result) == {area} and isinstance(result[area], dict):
                result = result[area]
            figures.update(result)
        return figures

    return call


# audit: the audits' figures and the heartbeats' latency at rest (issue 13)
AREAS["audit"] = _merged("audit", "bench.audit_bench", "bench.heartbeat_bench")
# demo: make dev's first minutes, from a fresh home to the data moving (issue 14); last, as it
# starts a stack of its own: the bench's is stopped first, as a second stack (JVMs starting,
# then idling) would take CPU from the one measured on this 2-core machine
AREAS["demo"] = _merged("demo", "bench.demo_bench")
OWN_STACK = frozenset({"demo"})


def _previous() -> dict[str, Any]:
    """The figures of the last runs (``{}`` when there are none or the file is unreadable)."""
    try:
        found = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def merge(
    previous: dict[str, Any],
    results: dict[str, Any],
    measured: dict[str, str],
    facts: dict[str, Any],
) -> dict[str, Any]:
    """``previous`` results with the areas just run replaced (the others stay as they were),
    the machine facts of this run and when each area ran."""
    merged = {**previous, **results}
    merged["machine"] = facts
    merged["measured"] = {**previous.get("measured", {}), **measured}
    return merged


def wanted_areas(argv: list[str]) -> list[str]:
    """The areas ``argv`` names (``cdc,sink`` or ``cdc sink``; none: every area), in order."""
    named = [a.strip() for arg in argv for a in arg.split(",") if a.strip()]
    unknown = [a for a in named if a not in AREAS]
    if unknown:
        raise SystemExit(f"unknown bench area(s) {', '.join(unknown)}: use {','.join(AREAS)}")
    return named or list(AREAS)


def main(argv: list[str]) -> int:
    """Run the areas named in ``argv`` (default: all), merge their figures into
    ``bench/results.json`` and regenerate the report from it."""
    wanted = wanted_areas(argv)
    home = Path(tempfile.mkdtemp(prefix="bench-", dir=PROJECT_ROOT / ".mesh"))
    home.chmod(0o755)
    os.environ["MESH_HOME"] = str(home)
    results: dict[str, Any] = {}
    measured: dict[str, str] = {}
    facts = machine.facts()
    stack_up = False
    try:
        for area in wanted:
            if area in OWN_STACK and stack_up:
                stack.down()
            elif area not in OWN_STACK and not stack_up:
                stack.up()
            stack_up = area not in OWN_STACK
            print(f"==> bench {area}", flush=True)
            load = os.getloadavg()[0]  # this machine is shared: say how busy it was
            results[area] = AREAS[area]()
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            measured[area] = f"{when}, load average {load:.1f} at its start"
            print(json.dumps(results[area]), flush=True)
            for miss in report.missed(area, results[area]):
                print(f"{area}: FLOOR MISSED: {miss}", flush=True)
            # written after every area: one that fails later loses none measured before it
            _write(merge(_previous(), {area: results[area]}, {area: measured[area]}, facts))
    finally:
        if stack_up:
            stack.down()
        shutil.rmtree(home, ignore_errors=True)
    print(f"wrote {RESULTS}, {report.REPORT} and the README's performance section")
    return 0


def _write(merged: dict[str, Any]) -> None:
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    report.write(merged, list(AREAS))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
