"""CDC connector control: one connector per (domain, source database), following its declarations.

``plan`` is pure: the CDC products of one domain and database become one :class:`ConnectorSpec`
that captures all their tables; ``config`` is its process configuration. For each spec,
:func:`observe_connector` reads what exists (the publication's tables, the slot, the process and
the tables it captures) and the pure :func:`plan_connector` turns the difference into
:class:`~datamesh.control.actions.Action` values, which
:func:`datamesh.control.connector_apply.apply_connector` carries out. Running a connector —
start under a lock, supervise, wait until it streams, stop — is :mod:`datamesh.cdc.running`.

A table is *followed* when it is in the publication **and** the connector captures it: only then
do its changes reach its topic. Plan verbs (resource ``connector``, name = connector name):

- ``create`` — start the connector (the first start creates publication and slot and snapshots
  every table; a later one resumes from the slot);
- ``update`` ``{"add": [table]}`` — a declared table not followed yet: add it to the
  publication, snapshot it (DBLog) and capture it, with no gap; ``{"remove": [table]}`` — a
  table no longer declared: drop it from the publication, stop emitting it (its topic stays
  until the product is retired);
- ``drift`` (gate ``repair``) — changes were not captured and only a re-snapshot repairs:
  the slot is gone or lost WAL (``{"repair": "resnapshot"}``), the publication is gone (same),
  or a captured table was dropped from the publication out of band (``{"add": [table]}``);
- ``in_sync`` — every declared table followed, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg2.extensions import make_dsn

from datamesh import names
from datamesh.cdc import running
from datamesh.cdc.catalog import connect, one, publication_tables, slot_info
from datamesh.cdc.config import ConnectorConfig, default_slot
from datamesh.cdc.running import workdir
from datamesh.cdc.snapshot_store import SCHEMA, WATERMARK_TABLE
from datamesh.control.actions import Action, Gate, Verb
from datamesh.specs.product import DataProduct

ProductOfTable = Callable[[str], str | None]


@dataclass(frozen=True)
class ConnectorSpec:
    """The desired connector of one source database."""

    domain: str
    database: str
    tables: tuple[str, ...]
    heartbeats: tuple[tuple[str, float], ...] = ()  # (table, seconds) declaring `heartbeat:`

    @property
    def name(self) -> str:
        """``<domain>-<database>-cdc``."""
        return names.connector(self.domain, self.database)

    @property
    def slot(self) -> str:
        """Its replication slot, also the name of its publication."""
        return default_slot(self.domain, self.database)

    def topic(self, table: str) -> str:
        """The topic of one of its tables."""
        return f"{self.domain}.{table}"


@dataclass(frozen=True)
class ObservedConnector:
    """What exists of one connector.

    ``publication``: its tables (the watermark table left out), None when it does not exist;
    ``slot``: the replication slot exists; ``slot_recorded``: the connector created it once
    (``mesh_cdc.connectors``), so a missing slot was dropped; ``slot_lost``: PostgreSQL removed
    WAL the slot still needed; ``running``: its supervisor runs; ``captured``: the tables of
    the command it was last started with (None when never started from this work directory);
    ``state``/``error``: from its status file.
    """

    publication: frozenset[str] | None
    slot: bool
    slot_recorded: bool = False
    slot_lost: bool = False
    running: bool = False
    captured: frozenset[str] | None = None
    state: str = ""
    error: str = ""


def plan(products: Sequence[DataProduct]) -> list[ConnectorSpec]:
    """Group CDC products into connectors (tables sorted, connectors by name)."""
    groups: dict[tuple[str, str], set[str]] = {}
    beats: dict[tuple[str, str], set[tuple[str, float]]] = {}
    for p in products:
        if p.kind == "cdc" and p.source is not None:
            table = f"{p.source.schema}.{p.source.table}"
            groups.setdefault((p.domain, p.source.database), set()).add(table)
            if p.heartbeat is not None:
                every = p.heartbeat.total_seconds()
                beats.setdefault((p.domain, p.source.database), set()).add((table, every))
    return [
        ConnectorSpec(d, db, tuple(sorted(t)), tuple(sorted(beats.get((d, db), ()))))
        for (d, db), t in sorted(groups.items())
    ]


def spec_for(product: DataProduct, products: Sequence[DataProduct]) -> ConnectorSpec:
    """The connector that captures ``product``'s table."""
    assert product.source is not None
    return next(
        s
        for s in plan(products)
        if (s.domain, s.database) == (product.domain, product.source.database)
    )


def products_by_table(spec: ConnectorSpec, products: Sequence[DataProduct]) -> dict[str, str]:
    """``schema.table`` -> product id, for the CDC products of ``spec``'s domain and database
    (``.get`` of it is a ``product_of_table`` for :func:`plan_connector`)."""
    return {
        f"{p.source.schema}.{p.source.table}": p.id
        for p in products
        if p.kind == "cdc"
        and p.source is not None
        and (p.domain, p.source.database) == (spec.domain, spec.database)
    }


def config(spec: ConnectorSpec, dsn: str, bootstrap: str, registry: str) -> ConnectorConfig:
    """The connector process configuration of ``spec``."""
    return ConnectorConfig(
        dsn=dsn,
        database=spec.database,
        tables=spec.tables,
        domain=spec.domain,
        bootstrap=bootstrap,
        registry=registry,
        slot=spec.slot,
        publication=spec.slot,
        status_file=workdir(spec.name) / "status.json",
        heartbeats=spec.heartbeats,
    )


# -- observe -------------------------------------------------------------------------------------


def observe_connector(spec: ConnectorSpec, dsn: str) -> ObservedConnector | None:
    """What exists of ``spec``'s connector in its source database (``dsn`` names the server;
    the database is ``spec.database``) and in this work directory; None when nothing does (no
    publication, slot or record of one, and no process)."""
    conn = connect(make_dsn(dsn, dbname=spec.database), f"{spec.name}-observe")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            published = publication_tables(cur, spec.slot)
            slot = slot_info(cur, spec.slot)
            recorded = _slot_recorded(cur, spec.slot)
    finally:
        conn.close()
    live = running.supervised(spec.name)
    if published is None and slot is None and not recorded and not live:
        return None  # a command file left from an earlier database of that name is not a trace
    status = running.status(spec.name) or {}
    captured = running.captured(spec.name)
    return ObservedConnector(
        publication=None if published is None else frozenset(published - {WATERMARK_TABLE}),
        slot=slot is not None,
        slot_recorded=recorded,
        slot_lost=slot is not None and slot.wal_status == "lost",
        running=live,
        captured=None if captured is None else frozenset(captured),
        state=str(status.get("state") or ""),
        error=str(status.get("error") or ""),
    )


def _slot_recorded(cur: Any, slot: str) -> bool:
    if one(cur, "SELECT to_regclass(%s)", (f"{SCHEMA}.connectors",))[0] is None:
        return False
    found = one(cur, f"SELECT 1 FROM {SCHEMA}.connectors WHERE slot_name = %s", (slot,))
    return found is not None


# -- plan (pure) ---------------------------------------------------------------------------------


def plan_connector(
    spec: ConnectorSpec, observed: ObservedConnector | None, product_of_table: ProductOfTable
) -> list[Action]:
    """The actions that make ``spec``'s connector follow exactly ``spec.tables`` (pure).

    ``product_of_table(schema.table)`` names the product an action belongs to (None: a table
    whose declaration is gone; its topic name is used). Connector-wide actions (create, drift
    of slot or publication, in_sync) belong to the product of the first table and list every
    product in ``params["products"]``. Order: updates, then ``create`` (a stopped connector is
    started once its publication holds what it will capture). A spec without tables is a
    retirement, not planned here: ``[]``.
    """
    if not spec.tables:
        return []
    ctx = _Context(spec, observed, product_of_table)
    fresh = observed is None or not (
        observed.publication is not None or observed.slot or observed.slot_recorded
    )
    if observed is None or fresh:
        # nothing created yet (or a first start still retrying): the first start creates all
        return [
            ctx.create(
                f"start it: creates publication and slot {spec.slot}, snapshots "
                f"{_list(spec.tables)} (DBLog)"
            )
        ]
    whole = _connector_drift(ctx, observed)
    if whole is not None:
        return [whole]
    actions = _table_actions(ctx, observed)
    if not observed.running:
        why = f" (it stopped: {observed.error})" if observed.error else ""
        actions.append(ctx.create(f"start it{why}; it resumes from slot {spec.slot}"))
    if not actions:
        actions.append(ctx.whole("in_sync", f"follows {_list(spec.tables)} from slot {spec.slot}"))
    return actions


@dataclass(frozen=True)
class _Context:
    spec: ConnectorSpec
    observed: ObservedConnector | None
    product_of_table: ProductOfTable

    def product(self, table: str) -> str:
        return self.product_of_table(table) or self.spec.topic(table)

    def whole(self, verb: Verb, detail: str, **params: Any) -> Action:
        products = [self.product(t) for t in self.spec.tables]
        gate: Gate = "repair" if verb == "drift" else ""
        return Action(
            products[0],
            "connector",
            self.spec.name,
            verb,
            detail,
            {**params, "products": products},
            gate,
        )

    def create(self, detail: str) -> Action:
        return self.whole("create", detail, tables=list(self.spec.tables))

    def table(self, table: str, verb: Verb, detail: str, params: Mapping[str, Any]) -> Action:
        gate: Gate = "repair" if verb == "drift" else ""
        return Action(self.product(table), "connector", self.spec.name, verb, detail, params, gate)


def _connector_drift(ctx: _Context, observed: ObservedConnector) -> Action | None:
    """Slot or publication gone: changes were not captured; only a re-snapshot repairs."""
    spec = ctx.spec
    repair = (
        f"a re-snapshot repairs: recreate publication and slot {spec.slot}, snapshot "
        f"{_list(spec.tables)} (DBLog)"
    )
    if observed.slot_lost:
        what = f"replication slot {spec.slot} lost WAL it still needed (max_slot_wal_keep_size)"
    elif not observed.slot and observed.slot_recorded:
        where = "while publication exists" if observed.publication is not None else "too"
        what = f"replication slot {spec.slot} was dropped out of band ({where})"
    elif observed.publication is None and observed.slot:
        what = (
            f"publication {spec.slot} was dropped out of band while its slot exists "
            "(pgoutput reads the publication as of each change)"
        )
    else:
        return None
    return ctx.whole(
        "drift",
        f"{what}: changes made since were not captured; {repair}",
        repair="resnapshot",
        tables=list(spec.tables),
    )


def _table_actions(ctx: _Context, observed: ObservedConnector) -> list[Action]:
    spec = ctx.spec
    published = observed.publication or frozenset()
    # never started from here: what the publication holds is what it followed
    captured = observed.captured if observed.captured is not None else published
    actions: list[Action] = []
    for table in spec.tables:
        if table in published and table in captured:
            continue
        if table in captured:  # captured, yet pgoutput no longer sends it
            actions.append(
                ctx.table(
                    table,
                    "drift",
                    f"{table} was dropped from publication {spec.slot} out of band: its "
                    "changes since were not captured; a re-snapshot repairs (add it back, "
                    "snapshot it, DBLog)",
                    {"add": [table]},
                )
            )
            continue
        how = "capture it" if table in published else f"add it to publication {spec.slot}"
        actions.append(
            ctx.table(
                table,
                "update",
                f"{how}, snapshot it (DBLog) and stream it to {spec.topic(table)}, no gap",
                {"add": [table]},
            )
        )
    for table in sorted((published | captured) - set(spec.tables)):
        actions.append(
            ctx.table(
                table,
                "update",
                f"drop {table} from publication {spec.slot} and stop emitting it (topic "
                f"{spec.topic(table)} stays until the product is retired)",
                {"remove": [table]},
            )
        )
    return actions


def _list(tables: Sequence[str]) -> str:
    return ", ".join(tables)
