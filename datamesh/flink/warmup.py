"""Warm the SQL Gateway's planner while Dagster starts.

The first statement a fresh gateway plans loads and compiles the planner, the Kafka connector
and the platform's formats: measured on this machine, planning the demo's first processor took
9.2 s on a fresh gateway and 0.8-2.6 s for the next ones. ``mesh dev`` runs this module in the
background just before it becomes ``dagster dev``, so that cost is paid while the UI starts
instead of inside the first deployment. It plans :func:`datamesh.flink.ddl.warmup_statements`
(nothing is deployed, no topic is read) and exits; a failure only costs the first deployment
its cold start.

``python -m datamesh.flink.warmup`` (prints how long the planning took).
"""

from __future__ import annotations

import sys
import time

from datamesh.flink import connections, ddl
from datamesh.flink.gateway import SqlGateway


def warm() -> float:
    """Plan the warm-up statements in one gateway session; seconds it took."""
    conn = connections.resolve()
    began = time.monotonic()
    with SqlGateway(conn.gateway_url).session({}, name="mesh warm-up") as session:
        for statement in ddl.warmup_statements(conn):
            session.execute(statement)
    return time.monotonic() - began


def main() -> int:
    """Warm the gateway; say how long it took (exit 1, with why, when it could not)."""
    try:
        took = warm()
    except Exception as exc:  # a warm-up that fails must not matter
        print(f"SQL Gateway warm-up failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(f"SQL Gateway warmed in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
