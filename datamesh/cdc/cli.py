"""Command line of the CDC connector.

- ``python -m datamesh.cdc --dsn ... --database ... --tables ... --domain ... --bootstrap ...
  --registry ...`` runs the connector (exit 0 when stopped by SIGTERM/SIGINT, 2 on a terminal
  error, whose message and fix are printed and written to the status file);
- ``python -m datamesh.cdc snapshot --dsn ... --database ... --domain ... --table
  public.movies [--where "id < 1000"]`` asks the running (or next) connector of that slot for
  a DBLog snapshot of a table or key range;
- ``python -m datamesh.cdc drop --dsn ... --database ... --domain ...`` removes the slot,
  publication and connector state (an abandoned slot retains WAL forever);
- ``python -m datamesh.cdc health --status-file ... [--ready]`` exits 0 when the connector
  writing that status file is healthy (:mod:`datamesh.cdc.health`: probes).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence

from datamesh import endpoints
from datamesh.cdc import health, setup
from datamesh.cdc import snapshot_store as store
from datamesh.cdc.catalog import connect
from datamesh.cdc.config import DSN_ENV, ConnectorConfig, default_slot, from_args
from datamesh.cdc.connector import Connector
from datamesh.cdc.snapshot_filter import check_where
from datamesh.errors import MeshError


def _logger(name: str) -> Callable[[str], None]:
    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} [{name}] {line}", flush=True)

    return log


def run(argv: Sequence[str]) -> int:
    """Run one connector until SIGTERM/SIGINT or a terminal error."""
    try:
        config = from_args(argv)
    except MeshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    connector = Connector(config, _logger(config.name))
    signal.signal(signal.SIGTERM, connector.request_stop)
    signal.signal(signal.SIGINT, connector.request_stop)
    return connector.run()


def _admin_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m datamesh.cdc {prog}")
    dsn = endpoints.setting(DSN_ENV)
    p.add_argument("--dsn", default=dsn, required=dsn is None)
    p.add_argument("--database", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--slot")
    p.add_argument("--publication")
    return p


def _admin_config(a: argparse.Namespace) -> ConnectorConfig:
    slot = a.slot or default_slot(a.domain, a.database)
    return ConnectorConfig(
        dsn=a.dsn,
        database=a.database,
        tables=(),
        domain=a.domain,
        bootstrap="",
        registry="",
        slot=slot,
        publication=a.publication or slot,
    )


def request(argv: Sequence[str]) -> int:
    """``snapshot``: record a snapshot request for the connector's slot."""
    p = _admin_parser("snapshot")
    p.add_argument("--table", required=True, help="schema.table")
    p.add_argument("--where", help="one SQL condition: snapshot only these rows")
    a = p.parse_args(list(argv))
    config = _admin_config(a)
    conn = connect(config.database_dsn, f"{config.name}-cli")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            setup.ensure_state(cur, config.slot)
            if a.where:
                check_where(cur, a.table, a.where)
            store.request_snapshot(cur, config.slot, a.table, a.where)
    except MeshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    print(f"snapshot of {a.table} requested for slot {config.slot}")
    return 0


def drop(argv: Sequence[str]) -> int:
    """``drop``: remove slot, publication and state (the connector must be stopped)."""
    config = _admin_config(_admin_parser("drop").parse_args(list(argv)))
    conn = connect(config.database_dsn, f"{config.name}-cli")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            setup.drop(cur, config)
    finally:
        conn.close()
    print(f"dropped slot {config.slot} and publication {config.publication}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch on the first argument: ``snapshot``, ``drop``, ``health``, or run the connector."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["snapshot"]:
        return request(args[1:])
    if args[:1] == ["drop"]:
        return drop(args[1:])
    if args[:1] == ["health"]:
        return health.main(args[1:])
    return run(args)
