"""The connector's configuration: one frozen value, parsed from the command line.

``python -m datamesh.cdc --dsn ... --database studio --tables public.movies --domain studio
--bootstrap ... --registry ...`` runs one connector for one source database. Derived names come
from :mod:`datamesh.names`: the connector is ``<domain>-<database>-cdc``; its slot and
publication default to that name with ``-`` turned into ``_`` (slot names allow
``[a-z0-9_]`` only).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from psycopg2.extensions import make_dsn

from datamesh import endpoints, names
from datamesh.cdc.errors import SourceConfigError
from datamesh.specs.declaration import CleanupPolicy

SnapshotMode = Literal["initial", "never"]
TruncateMode = Literal["emit", "skip"]
_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
DSN_ENV = endpoints.CDC_DSN_VAR


@dataclass(frozen=True)
class ConnectorConfig:
    """Everything one connector process needs; ``tables`` are ``schema.table`` names."""

    dsn: str
    database: str
    tables: tuple[str, ...]
    domain: str
    bootstrap: str
    registry: str
    slot: str
    publication: str
    snapshot: SnapshotMode = "initial"
    chunk_size: int = 4096
    snapshot_pause_s: float = 0.0
    heartbeat_s: float = 10.0
    status_file: Path | None = None
    status_interval_s: float = 1.0
    partitions: int = 1
    replication_factor: int = 1
    cleanup_policy: CleanupPolicy = "compact"
    truncate: TruncateMode = "emit"
    set_replica_identity: bool = False
    recreate_slot: bool = False
    pause_retry_s: float = 30.0
    heartbeats: tuple[tuple[str, float], ...] = ()  # (schema.table, seconds): synthetic events

    @property
    def name(self) -> str:
        """The connector's name (``<domain>-<database>-cdc``)."""
        return names.connector(self.domain, self.database)

    @property
    def database_dsn(self) -> str:
        """``dsn`` pointed at ``database`` (URL or key=value DSNs alike)."""
        return str(make_dsn(self.dsn, dbname=self.database))

    def topic(self, table: str) -> str:
        """The topic of ``schema.table``: ``<domain>.<schema>.<table>``."""
        return f"{self.domain}.{table}"


def default_slot(domain: str, database: str) -> str:
    """Slot (and publication) name derived from the connector name."""
    return names.connector(domain, database).replace("-", "_").lower()


def parse_tables(text: str) -> tuple[str, ...]:
    """``public.movies,public.productions`` -> validated ``schema.table`` names."""
    tables = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in tables if t.count(".") != 1]
    if not tables or bad:
        raise SourceConfigError(
            f"--tables {text!r}: expected schema.table names, bad: {bad or '(none given)'}",
            fix="write --tables public.movies,public.productions",
        )
    return tables


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m datamesh.cdc`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m datamesh.cdc", description=__doc__)
    p.add_argument(
        "--dsn",
        default=endpoints.setting(DSN_ENV),
        help=f"PostgreSQL server DSN, URL or key=value (default ${DSN_ENV}: keeps a password "
        "out of the process list)",
    )
    p.add_argument("--database", required=True, help="source database to follow")
    p.add_argument("--tables", required=True, help="schema.table,... to capture")
    p.add_argument("--domain", required=True, help="data mesh domain (topic prefix)")
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    p.add_argument("--registry", required=True, help="schema registry URL")
    p.add_argument("--slot", help="replication slot (default <domain>_<database>_cdc)")
    p.add_argument("--publication", help="publication (default: the slot name)")
    p.add_argument("--snapshot", choices=["initial", "never"], default="initial")
    p.add_argument("--chunk-size", type=int, default=4096, help="rows per snapshot chunk")
    p.add_argument("--snapshot-pause-s", type=float, default=0.0, help="pause between chunks")
    p.add_argument("--heartbeat-s", type=float, default=10.0, help="heartbeat interval")
    p.add_argument("--status-file", type=Path, help="status JSON written periodically")
    p.add_argument("--status-interval-s", type=float, default=1.0)
    p.add_argument("--partitions", type=int, default=1, help="partitions of created topics")
    p.add_argument("--replication-factor", type=int, default=1, help="of created topics")
    p.add_argument(
        "--cleanup-policy",
        choices=["compact", "delete", "compact,delete"],
        default="compact",
        help="cleanup.policy of topics the connector creates",
    )
    p.add_argument("--truncate", choices=["emit", "skip"], default="emit")
    p.add_argument(
        "--set-replica-identity",
        action="store_true",
        help="ALTER TABLE ... REPLICA IDENTITY FULL where it is not set (complete before "
        "images; DEFAULT is followed too)",
    )
    p.add_argument(
        "--recreate-slot",
        action="store_true",
        help="create the slot again after it was dropped (re-snapshots if initial)",
    )
    p.add_argument(
        "--pause-retry-s",
        type=float,
        default=30.0,
        help="how often a paused table checks whether its cause was fixed",
    )
    p.add_argument(
        "--heartbeat",
        action="append",
        default=[],
        metavar="SCHEMA.TABLE=SECONDS",
        help="write a synthetic heartbeat event for the table's topic every SECONDS "
        "(datamesh.heartbeat); repeat per table",
    )
    return p


def parse_heartbeats(items: Sequence[str], tables: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``["public.movies=10"]`` -> ``(("public.movies", 10.0),)``; each table must be captured."""
    out = []
    for item in items:
        table, _, seconds = item.partition("=")
        try:
            every = float(seconds)
        except ValueError:
            every = 0.0
        if table not in tables or not 1.0 <= every <= 3600.0:
            raise SourceConfigError(
                f"--heartbeat {item!r}: expected a captured schema.table and 1-3600 seconds",
                fix="write --heartbeat public.movies=10 for a table in --tables",
            )
        out.append((table, every))
    return tuple(sorted(out))


def from_args(argv: Sequence[str]) -> ConnectorConfig:
    """Parse and validate the command line."""
    a = build_parser().parse_args(list(argv))
    if not a.dsn:
        raise SourceConfigError("no source DSN given", fix=f"pass --dsn or set ${DSN_ENV}")
    slot = a.slot or default_slot(a.domain, a.database)
    if not _SLOT.match(slot):
        raise SourceConfigError(
            f"slot name {slot!r} is not valid", fix="use 1-63 characters of [a-z0-9_]"
        )
    if a.chunk_size < 1:
        raise SourceConfigError(f"--chunk-size {a.chunk_size}", fix="use a positive number")
    tables = parse_tables(a.tables)
    return ConnectorConfig(
        dsn=a.dsn,
        database=a.database,
        tables=tables,
        domain=a.domain,
        bootstrap=a.bootstrap,
        registry=a.registry,
        slot=slot,
        publication=a.publication or slot,
        snapshot=a.snapshot,
        chunk_size=a.chunk_size,
        snapshot_pause_s=a.snapshot_pause_s,
        heartbeat_s=a.heartbeat_s,
        status_file=a.status_file,
        status_interval_s=a.status_interval_s,
        partitions=a.partitions,
        replication_factor=a.replication_factor,
        cleanup_policy=a.cleanup_policy,
        truncate=a.truncate,
        set_replica_identity=a.set_replica_identity,
        recreate_slot=a.recreate_slot,
        pause_retry_s=a.pause_retry_s,
        heartbeats=parse_heartbeats(a.heartbeat, tables),
    )


def to_args(config: ConnectorConfig, with_dsn: bool = True) -> list[str]:
    """The command line that :func:`from_args` turns back into ``config`` (for spawning);
    without the DSN (``with_dsn=False``) it must come from ``$MESH_CDC_DSN``."""
    args = [
        *(["--dsn", config.dsn] if with_dsn else []),
        "--database",
        config.database,
        "--tables",
        ",".join(config.tables),
        "--domain",
        config.domain,
        "--bootstrap",
        config.bootstrap,
        "--registry",
        config.registry,
        "--slot",
        config.slot,
        "--publication",
        config.publication,
        "--snapshot",
        config.snapshot,
        "--chunk-size",
        str(config.chunk_size),
        "--snapshot-pause-s",
        str(config.snapshot_pause_s),
        "--heartbeat-s",
        str(config.heartbeat_s),
        "--status-interval-s",
        str(config.status_interval_s),
        "--partitions",
        str(config.partitions),
        "--cleanup-policy",
        config.cleanup_policy,
        "--replication-factor",
        str(config.replication_factor),
        "--truncate",
        config.truncate,
        "--pause-retry-s",
        str(config.pause_retry_s),
    ]
    if config.status_file is not None:
        args += ["--status-file", str(config.status_file)]
    if config.set_replica_identity:
        args.append("--set-replica-identity")
    if config.recreate_slot:
        args.append("--recreate-slot")
    for table, every in config.heartbeats:
        args += ["--heartbeat", f"{table}={every:g}"]
    return args
