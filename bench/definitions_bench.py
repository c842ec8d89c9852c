"""Dagster definitions load time for generated declarations, in a fresh interpreter each time.

N products of mixed kinds (per domain: 40% CDC, 40% processors selecting from a CDC product of
their domain, 20% Iceberg sinks of a CDC product of their domain; 100 products per domain up to
250 per domain for 1,000) are written to a temporary domains folder, and ``import definitions``
runs in a new ``python`` with ``MESH_DOMAINS_DIR`` pointing there — the whole cold load a code
server does: imports, declarations, assets (with column lineage from each processor's SQL),
checks, sensors, resources. ``definitions_load_<n>_s`` is the median of 3; the baseline is
``load_products`` alone on the same folder in a fresh interpreter (its imports included), and
``ratio_vs_load_products_<n>`` = that / the definitions load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import generated_mesh
from bench.generated_mesh import Mix
from datamesh import endpoints
from datamesh.stack.paths import PROJECT_ROOT

RUNS = 3
DEFINITIONS = (
    "import time; t = time.perf_counter(); import definitions; "
    "assert definitions.defs.assets; print(time.perf_counter() - t)"
)
LOAD_PRODUCTS = (
    "import time, sys; from pathlib import Path; t = time.perf_counter(); "
    "from datamesh.specs import load_products; load_products(Path(sys.argv[1])); "
    "print(time.perf_counter() - t)"
)


def layout(n: int) -> tuple[int, Mix]:
    """Domains and the mix of each for ``n`` products: 100 per domain, at most 4 domains."""
    domains = min(4, max(1, n // 100))
    per = n // domains
    return domains, Mix(cdc=per * 2 // 5, processors=per * 2 // 5, iceberg_sinks=per // 5)


def run(n: int, tag: str) -> dict[str, float]:
    """``definitions_load_<n>_s`` and its ratio to ``load_products`` alone."""
    with tempfile.TemporaryDirectory(prefix="cp-defs-") as tmp:
        folder = Path(tmp)
        domains, mix = layout(n)
        generated_mesh.write(folder, f"df{tag}n{n}d", domains, mix)
        defs_s = statistics.median(_seconds(DEFINITIONS, folder) for _ in range(RUNS))
        load_s = statistics.median(_seconds(LOAD_PRODUCTS, folder) for _ in range(RUNS))
    return {
        f"definitions_load_{n}_s": round(defs_s, 2),
        f"load_products_{n}_s": round(load_s, 3),
        f"ratio_vs_load_products_{n}": round(load_s / defs_s, 3),
    }


def _seconds(script: str, folder: Path) -> float:
    env = {**os.environ, endpoints.DOMAINS_DIR_VAR: str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading {folder} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])
