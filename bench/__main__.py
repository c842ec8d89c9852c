"""``make bench``: start a private embedded stack, measure every area in one run, write
``bench/results.json`` shaped ``{"<area>": {"<figure>_<unit>": value, "ratio_vs_<baseline>": v}}``.

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

from datamesh import endpoints
from datamesh.stack import stack
from datamesh.stack.paths import PROJECT_ROOT

RESULTS = Path(__file__).parent / "results.json"


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


def _previous() -> dict[str, Any]:
    """The figures of the last runs (``{}`` when there are none or the file is unreadable)."""
    try:
        found = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def main(argv: list[str]) -> int:
    """Run the areas named in ``argv`` (default: all) and merge their figures into
    ``bench/results.json``."""
    wanted = argv or list(AREAS)
    home = Path(tempfile.mkdtemp(prefix="bench-", dir=PROJECT_ROOT / ".mesh"))
    home.chmod(0o755)
    os.environ["MESH_HOME"] = str(home)
    results: dict[str, Any] = {}
    try:
        stack.up()
        for area in wanted:
            print(f"==> bench {area}", flush=True)
            results[area] = AREAS[area]()
            print(json.dumps(results[area]), flush=True)
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)
    merged = {**_previous(), **results}  # areas run replace their entries; the others stay
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
