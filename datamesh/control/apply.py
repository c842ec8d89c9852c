"""Carry out the plan: validate everything first, then apply action by action, resumably.

``apply`` (``mesh apply``) works in three steps:

1. **Refuse before touching.** Observe, plan. Any ``refuse`` action, any system that could not be
   read, a change that breaks a consumer, a processor whose SQL the Flink SQL Gateway rejects
   (every job to be created or changed is planned through the gateway here) or a PostgreSQL
   sink table that cannot take its rows stops the apply before the first change — not even a
   subject's level is set.
2. **Apply in plan order**, each action through the component that owns the resource (the
   functions the Dagster assets call too: ``create_topic``, the connector's apply, the declared
   job's deploy, the schema controller). Gated actions wait for their flag
   (``--allow-delete`` for topics, tables and connector slots, ``--repair`` or a declared
   ``repair: auto`` for drift repairs) and are reported as skipped.
3. **Record.** The journal (``<MESH_HOME>/control/journal.json``) lists the actions and marks
   each one done as it completes, so an apply that fails midway says what was done, and the
   next one — which plans again from what it observes, so it only does what is left — says it
   is finishing that one. A product whose actions all succeeded is recorded in the inventory.
   When the schema controller redeployed a processor, its consumers follow
   (:func:`datamesh.control.pausing.reconcile_schemas` repeats its rounds).

A second apply plans nothing and says so.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg2
from psycopg2 import sql as pgsql

from datamesh import endpoints, pauses
from datamesh.cdc import running
from datamesh.control import connectors, inventory
from datamesh.control.acls import apply_acl
from datamesh.control.actions import Action
from datamesh.control.connector_apply import apply_connector, retire_connector
from datamesh.control.desired import desired
from datamesh.control.inventory import Applied
from datamesh.control.observe import observe
from datamesh.control.observed import Observed
from datamesh.control.pausing import apply_evolution, reconcile_schemas
from datamesh.control.plan import plan
from datamesh.errors import MeshError, TerminalError
from datamesh.flink.connections import resolve
from datamesh.flink.declared import deploy_declared, job_for
from datamesh.flink.deploy import FlinkJobs
from datamesh.kafka_admin import TopicAdmin
from datamesh.kafka_config import client_config
from datamesh.schema_client import SchemaClient
from datamesh.sinks import postgres
from datamesh.sinks.catalog import open_catalog
from datamesh.sinks.iceberg_sink import IcebergSink, sink_job
from datamesh.sinks.table_schema import iceberg_schema
from datamesh.specs import sink_layout as layout
from datamesh.specs.product import DataProduct, TopicSettings
from datamesh.topic_apply import create_topic
from datamesh.topic_plan import CreateTopic

log = logging.getLogger("datamesh.control")
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Options:
    """Flags of ``mesh apply``."""

    allow_delete: bool = False
    repair: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of one action."""

    action: Action
    status: Status
    note: str = ""


@dataclass
class Report:
    """The result of one apply: the plan, refusals (then nothing was applied), the outcome of
    each change, and the interrupted apply this one finished, if any."""

    actions: list[Action]
    refusals: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    resumed: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing was refused and no action failed."""
        return not self.refusals and all(o.status != "failed" for o in self.outcomes)

    @property
    def changed(self) -> int:
        """Actions carried out."""
        return sum(1 for o in self.outcomes if o.status == "done")


class ApplyRefused(TerminalError):
    """The plan was refused before anything was changed."""


def journal_path(root: Path | None = None) -> Path:
    """Where the running (or interrupted) apply records its progress."""
    return (root or endpoints.control_dir()) / "journal.json"


def apply(
    products: Sequence[DataProduct],
    options: Options = Options(),
    say: Callable[[str], None] = print,
    control_root: Path | None = None,
) -> Report:
    """Bring the mesh to ``products``; see the module docstring."""
    observed = observe(products, control_root)
    actions = plan(products, observed)
    report = Report(actions, resumed=_previous(control_root))
    if report.resumed:
        say(report.resumed)
    report.refusals = _refusals(actions, observed) or validate(products, actions)
    if report.refusals:
        return report
    todo = [a for a in actions if a.changes or (a.verb == "drift" and a.gate == "repair")]
    if not todo:
        _record(products, actions, [], control_root)
        journal_path(control_root).unlink(missing_ok=True)
        return report
    by_id = {p.id: p for p in products}
    journal = _Journal(journal_path(control_root), todo)
    for i, action in enumerate(todo):
        gate = _gate_closed(action, options, by_id)
        if gate:
            report.outcomes.append(Outcome(action, "skipped", gate))
            say(f"skipped  {action.describe()} ({gate})")
            continue
        if action.resource == "product" and action.verb == "delete":
            blocked = _held_back(action.product, report.outcomes)
            if blocked:
                report.outcomes.append(Outcome(action, "skipped", blocked))
                say(f"skipped  {action.describe()} ({blocked})")
                continue
        try:
            note = execute(action, products, control_root)
        except MeshError as exc:
            report.outcomes.append(Outcome(action, "failed", str(exc)))
            journal.failed(i, str(exc))
            say(f"FAILED   {action.describe()}\n         {exc}")
            done = sum(1 for o in report.outcomes if o.status == "done")
            say(
                f"apply stopped after {done} of {len(todo)} actions; run `mesh apply` again "
                "to finish from there"
            )
            _record(products, actions, report.outcomes, control_root)
            return report
        report.outcomes.append(Outcome(action, "done", note))
        journal.done(i)
        say(f"done     {action.describe()}" + (f" ({note})" if note else ""))
    _record(products, actions, report.outcomes, control_root)
    journal.finish()
    if any(o.action.params.get("inputs") is not None for o in report.outcomes):
        # a redeployed processor may publish a new schema: its consumers follow in rounds
        for action in reconcile_schemas(products):
            if action.changes:
                report.outcomes.append(Outcome(action, "done", "schema controller"))
                say(f"done     {action.describe()} (schema controller)")
    return report


def _previous(root: Path | None) -> str:
    path = journal_path(root)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    done, total = len(data.get("done", [])), len(data.get("actions", []))
    error = data.get("error") or "it was interrupted"
    return (
        f"the apply started {data.get('started', '?')} stopped after {done} of {total} actions "
        f"({error}); finishing from there"
    )


def _refusals(actions: Sequence[Action], observed: Observed) -> list[str]:
    out = [a.describe() for a in actions if a.verb == "refuse"]
    out += [
        f"{system} could not be read ({why}); nothing is applied without a full view"
        for system, why in sorted(observed.unreachable.items())
    ]
    return out


def validate(products: Sequence[DataProduct], actions: Sequence[Action]) -> list[str]:
    """Before any change: no action may break a consumer (a field it consumes dropped or
    retyped), every job to be created or changed is planned through the SQL Gateway (nothing
    deployed), and every PostgreSQL sink table must take its job's rows."""
    out = [
        f"{a.describe()} (update the consumer's declaration first, or together with this change)"
        for a in actions
        if a.changes and any(i.effect == "breaks" for i in a.impact)
    ]
    wanted = {a.product for a in actions if a.resource == "flink_job" and a.verb != "delete"}
    if not wanted:
        return out
    by_id = {p.id: p for p in products}
    try:
        conn = resolve()
        jobs = FlinkJobs(conn)
    except MeshError as exc:
        return [*out, f"Flink could not be reached to validate {', '.join(sorted(wanted))}: {exc}"]
    for pid in sorted(wanted):
        try:
            job = job_for(by_id[pid], by_id, conn)
            jobs.validate(job)
            if job.jdbc is not None:
                t = job.jdbc
                postgres.check_table(
                    endpoints.endpoint("postgres"),
                    t.database,
                    t.schema,
                    t.table,
                    [(n, pg) for n, _, pg in t.columns],
                    job.key,
                )
        except MeshError as exc:
            out.append(f"{pid}: {exc}")
    return out


def _gate_closed(action: Action, options: Options, by_id: Mapping[str, DataProduct]) -> str:
    if action.gate == "allow_delete" and not options.allow_delete:
        return "needs --allow-delete"
    if action.gate == "repair":
        auto = by_id.get(action.product)
        if not options.repair and (auto is None or auto.repair != "auto"):
            return "needs --repair or `repair: auto`"
    return ""


def _held_back(pid: str, outcomes: Sequence[Outcome]) -> str:
    kept = [o.action.name for o in outcomes if o.action.product == pid and o.status != "done"]
    return f"kept while {', '.join(kept)} remain" if kept else ""


def _record(
    products: Sequence[DataProduct],
    actions: Sequence[Action],
    outcomes: Sequence[Outcome],
    root: Path | None,
) -> None:
    """Record every declared product none of whose actions is pending or failed."""
    by_id = {p.id: p for p in products}
    unfinished = {a.product for a in actions if a.changes and a.product and a.product in by_id} - {
        o.action.product for o in outcomes if o.status == "done"
    }
    unfinished |= {o.action.product for o in outcomes if o.status == "failed"}
    for p in products:
        if p.retired or p.id in unfinished:
            continue
        inventory.save(Applied.of(desired(p, by_id)), root)


class _Journal:
    """Progress of the current apply, rewritten atomically after every action."""

    def __init__(self, path: Path, todo: Sequence[Action]) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "actions": [a.describe() for a in todo],
            "done": [],
        }
        self._write()

    def done(self, i: int) -> None:
        self.data["done"].append(i)
        self._write()

    def failed(self, i: int, error: str) -> None:
        self.data["error"] = f"action {i + 1} failed: {error}"
        self._write()

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self.path)


# -- executors: one per resource, each through the component that owns it ----------------------


def execute(action: Action, products: Sequence[DataProduct], root: Path | None = None) -> str:
    """Carry out one action; a short note of what was done ("" when nothing to add)."""
    by_id = {p.id: p for p in products}
    run = _EXECUTORS[action.resource]
    return run(action, by_id, root)


def _subject(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    client = SchemaClient(endpoints.endpoint("schema_registry"))
    if action.verb == "delete":
        client.delete_subject(action.name)
        return ""
    if "level" in action.params:
        client.set_level(action.name, str(action.params["level"]))
        return ""
    registered = client.register(action.name, dict(action.params["schema"]))
    return f"version {registered.version}, id {registered.id}"


def _admin() -> TopicAdmin:
    return TopicAdmin(client_config(endpoints.endpoint("kafka")))


def _topic(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    admin = _admin()
    if action.verb == "delete":
        admin.delete(action.name)
        return ""
    if action.verb == "drift":
        admin.alter_config(action.name, dict(action.params["configs"]))
        return "repaired"
    p = action.params
    settings = TopicSettings(
        int(p["partitions"]),
        int(p["replication_factor"]),
        int(p["retention_ms"]),
        p["cleanup_policy"],
    )
    create_topic(admin, CreateTopic(action.name, settings))
    return ""


def _connector(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    if action.verb == "delete":
        orphan = connectors.ConnectorSpec(
            str(action.params["domain"]), str(action.params["database"]), ()
        )
        retire_connector(connectors.config(orphan, endpoints.endpoint("postgres"), "", ""))
        return "stopped; publication and slot dropped"
    specs = {s.name: s for s in connectors.plan([p for p in by_id.values() if not p.retired])}
    spec = specs.get(action.name)
    if spec is None:
        running.stop(action.name)
        return "stopped (no table of its database is declared any more)"
    cfg = connectors.config(
        spec,
        endpoints.endpoint("postgres"),
        endpoints.endpoint("kafka"),
        endpoints.endpoint("schema_registry"),
    )
    # tables join (publication, DBLog snapshot, no gap) and leave through the connector's owner
    apply_connector(action, cfg, repair=action.gate == "repair")
    return "following " + ", ".join(running.captured(cfg.name) or cfg.tables)


def _sink_table(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    if action.verb == "delete":
        return _drop_table(action, root)
    product = by_id[action.product]
    sink = IcebergSink(
        open_catalog(),
        client_config(endpoints.endpoint("kafka")),
        SchemaClient(endpoints.endpoint("schema_registry")),
    )
    job = sink_job(product, dict(by_id))
    table, _ = sink.ensure_table(job)
    if action.verb == "update":
        fields = (layout.effective_schema(product, by_id) or {}).get("fields", [])
        wanted = iceberg_schema(
            [f for f in fields if f["name"] not in {c["name"] for c in layout.CHANGELOG_FIELDS}],
            job.key,
            job.mode,
        )
        missing = [f for f in wanted.fields if f.name in set(action.params.get("add", []))]
        have = {f.name for f in table.schema().fields}
        with table.update_schema() as update:
            for f in missing:
                if f.name not in have:
                    update.add_column(f.name, f.field_type, doc=f.doc, required=False)
        return "added " + ", ".join(f.name for f in missing)
    return ""


def _drop_table(action: Action, root: Path | None) -> str:
    rec = inventory.load_all(root).get(action.product)
    kind = action.params.get("kind") or (rec.kind if rec else "")
    if kind == "iceberg_sink":
        catalog = open_catalog()
        if catalog.table_exists(action.name):
            catalog.purge_table(action.name)
        return ""
    database, schema, table = action.name.split(".", 2)
    dsn = endpoints.endpoint("postgres")
    conn = psycopg2.connect(dsn, dbname=database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                pgsql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                    pgsql.Identifier(schema), pgsql.Identifier(table)
                )
            )
    finally:
        conn.close()
    return ""


def _flink_job(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    conn = resolve()
    jobs = FlinkJobs(conn)
    if action.verb == "delete":
        status = jobs.stop_with_savepoint(action.name)
        point = status.last_savepoint.path if status.last_savepoint else "none"
        return f"final savepoint {point}"
    if action.verb in ("pause", "resume") or "inputs" in action.params:  # the schema controller
        registry = SchemaClient(conn.registry_url, conn.registry_user_info)
        done = apply_evolution(action, list(by_id.values()), jobs, registry)
        return f"{done.action} ({done.state})" if done is not None else ""
    status = deploy_declared(jobs, by_id[action.product], by_id)
    return f"{status.action} ({status.state})"


def _acl(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    apply_acl(action, client_config(endpoints.endpoint("kafka")))
    return "granted" if action.verb == "create" else "revoked"


def _product(action: Action, by_id: Mapping[str, DataProduct], root: Path | None) -> str:
    inventory.forget(action.product, root)
    pauses.remove(action.product)
    return ""


_EXECUTORS: dict[str, Callable[[Action, Mapping[str, DataProduct], Path | None], str]] = {
    "subject": _subject,
    "topic": _topic,
    "dlq_topic": _topic,
    "connector": _connector,
    "sink_table": _sink_table,
    "flink_job": _flink_job,
    "acl": _acl,
    "product": _product,
}
