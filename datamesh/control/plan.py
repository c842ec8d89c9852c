"""``plan(products, observed) -> list[Action]``: the whole mesh, declared against running. Pure.

Resources are planned product by product in pipeline order (every input before its consumers)
and, inside a product, in :data:`datamesh.control.actions.RESOURCE_ORDER` (subjects, topic, DLQ,
connector, sink table, Flink job), so applying the list front to back never starts a job before
the topic it writes exists. Retirements come last, consumers before their inputs.

Rules (each one a row in ``tests/unit/control/test_plan.py``):

- a **topic** missing is created; a partition or replication difference is ``drift`` that apply
  never fixes (keys would move between partitions); a retention or cleanup difference is
  ``drift`` repaired only with ``--repair`` or ``repair: auto``;
- a **subject** gets the declared compatibility level; a processor's declared schema is
  registered when it differs from the latest version, and a change the registry refuses under
  the level is a ``refuse`` (nothing at all is applied then); a CDC product's schema is its
  table's (its connector registers it), so a declared ``.avsc`` that differs from the registered
  row is reported as ``drift`` with its impact on consumers;
- each processor's and sink's principal gets **ACLs** to read exactly its inputs' topics and its
  consumer group when the cluster has an authorizer; a grant it holds beyond that is ``drift``
  (removed with ``--repair``);
- a **connector** not running is started; a table declared for a running connector is added
  (its connector snapshots it), one no longer declared is removed;
- a **Flink job** not running is deployed (from its recorded savepoint or checkpoint); a running
  one whose declaration changed since the controller applied it (or that the controller never
  applied) is re-applied: validated, and upgraded from a savepoint when its statements changed;
- an upstream **schema change** is decided per consumer (:mod:`datamesh.control.pausing`): a
  job it breaks is paused (savepoint; ``drift`` while it stays paused), resumed once the
  consumer's declaration no longer uses what changed, redeployed for a change it does not use;
- an **Iceberg sink table** missing is created; columns its input gained are added;
- a product no longer declared, or declared ``retired: true``, is **retired**: job, connector
  table, sink table, subjects, DLQ and topic are torn down (topics and tables only with
  ``--allow-delete``) — refused while a declared product still reads it. Only products of the
  domains declared here are retired: a domain absent from the declarations (another domains
  directory applied to the same cluster) is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from datamesh import names
from datamesh.checks.schema_match import row_record
from datamesh.control import connectors
from datamesh.control.acls import desired_acls, plan_acls, platform_principals
from datamesh.control.actions import RESOURCE_ORDER, Action, Affected, Verb
from datamesh.control.desired import DesiredProduct, desired, pipeline_order
from datamesh.control.evolution import field_changes, impact_of_schema_change
from datamesh.control.inventory import Applied
from datamesh.control.observed import Observed
from datamesh.control.pausing import plan_evolution
from datamesh.specs import partitioning
from datamesh.specs import sink_layout as layout
from datamesh.specs.product import DataProduct
from datamesh.topic_plan import CLEANUP, RETENTION, CreateTopic, Drift, plan_topic

REPAIRABLE_TOPIC_SETTINGS = frozenset({CLEANUP, RETENTION})


@dataclass(frozen=True)
class Context:
    """What every rule may look at: the declared products and who reads whom."""

    by_id: Mapping[str, DataProduct]
    consumers: Mapping[str, tuple[DataProduct, ...]]


def plan(products: Sequence[DataProduct], observed: Observed) -> list[Action]:
    """Every action that brings the running mesh to the declarations, in apply order."""
    live = [p for p in products if not p.retired]
    ctx = _context(products, live)
    actions: list[Action] = []
    acls = _acls(products, live, observed)
    # a retirement refused because the product is still read keeps its table captured
    held = [p for p in products if p.retired and ctx.consumers.get(p.id)]
    conns = _connectors([*live, *held], observed)
    evolution = _evolution(live, observed)
    for p in pipeline_order(live):
        d = desired(p, ctx.by_id)
        per_product = [
            *_subjects(d, observed, ctx),
            *_topics(d, observed),
            *acls.pop(p.id, []),
            *conns.pop(p.id, []),
            *_sink_table(d, observed, ctx),
            *(evolution.pop(p.id, None) or _job(d, observed)),
        ]
        actions += sorted(per_product, key=lambda a: RESOURCE_ORDER.index(a.resource))
    actions = _connectors_after_their_topics(actions, live)
    actions += [a for rest in acls.values() for a in rest]  # grants of undeclared principals
    actions += [a for rest in conns.values() for a in rest]  # tables nobody declares any more
    actions += _retirements(products, observed, ctx)
    return actions


def _context(products: Sequence[DataProduct], live: Sequence[DataProduct]) -> Context:
    """Every declared product by id (a retired input still shapes its consumers' fingerprints);
    consumers counted among the live ones only."""
    consumers: dict[str, list[DataProduct]] = {}
    for p in live:
        for i in p.inputs:
            consumers.setdefault(i, []).append(p)
    return Context({p.id: p for p in products}, {k: tuple(v) for k, v in consumers.items()})


# -- subjects ---------------------------------------------------------------------------------


def _subjects(d: DesiredProduct, observed: Observed, ctx: Context) -> list[Action]:
    if "registry" in observed.unreachable:
        return []
    out: list[Action] = []
    pid = d.id
    for want in d.subjects:
        have = observed.subjects.get(want.subject)
        if have is None or have.level != want.level:
            was = have.level if have is not None and have.level else "unset"
            out.append(
                Action(
                    pid,
                    "subject",
                    want.subject,
                    "update",
                    f"compatibility {was} -> {want.level}",
                    {"level": want.level},
                )
            )
        if want.schema is not None:
            out += _registration(pid, want.subject, want.schema, observed, ctx)
    if d.product.kind == "cdc" and d.product.value_schema is not None and d.topic is not None:
        out += _cdc_columns(d, observed, ctx) or _cdc_schema(d, observed, ctx)
    return out


def _registration(
    pid: str,
    subject: str,
    schema: dict[str, object],
    observed: Observed,
    ctx: Context,
) -> list[Action]:
    latest = observed.subjects.get(subject)
    if latest is not None and latest.schema is not None and _same(latest.schema, schema):
        return []
    reasons = observed.refusals.get(subject)
    old = latest.schema if latest is not None else None
    impact = field_impact(pid, old, schema, ctx) if old is not None else ()
    if reasons:
        return [
            Action(
                pid,
                "subject",
                subject,
                "refuse",
                "the declared schema is refused by the registry: " + "; ".join(reasons),
                impact=impact,
            )
        ]
    verb: Verb = "create" if old is None else "update"
    what = "register the declared schema" + (
        f" as a new version after v{latest.version}" if latest and latest.version else ""
    )
    return [Action(pid, "subject", subject, verb, what, {"schema": schema}, impact=impact)]


def _cdc_columns(d: DesiredProduct, observed: Observed, ctx: Context) -> list[Action]:
    """The declared ``.avsc`` against the source table itself, when its database answers: a
    declared field the table does not have (or a table that does not exist) is drift — the
    declaration promises consumers a column the connector will never send."""
    have = observed.table_columns.get(d.id)
    p = d.product
    if have is None or p.source is None:
        return []
    subject = next(s.subject for s in d.subjects if s.subject.endswith("-value"))
    table = f"{p.source.database}.{p.source.schema}.{p.source.table}"
    if not have:
        detail = f"table {table} does not exist; create it (the connector captures it then)"
        return [Action(d.id, "subject", subject, "drift", detail)]
    missing = [f for f in p.field_names() if f not in have]
    if not missing or p.value_schema is None:
        return []
    declared = p.value_schema
    sent = {**declared, "fields": [f for f in declared["fields"] if f["name"] in have]}
    return [
        Action(
            d.id,
            "subject",
            subject,
            "drift",
            f"the declared schema has {', '.join(missing)}, which table {table} has not "
            f"(its columns: {', '.join(have)}); fix {p.declared_in} or the table",
            impact=field_impact(d.id, declared, sent, ctx, nullable=True),
        )
    ]


def _cdc_schema(d: DesiredProduct, observed: Observed, ctx: Context) -> list[Action]:
    subject = next(s.subject for s in d.subjects if s.subject.endswith("-value"))
    have = observed.subjects.get(subject)
    declared = d.product.value_schema
    if have is None or have.schema is None or declared is None:
        return []
    registered = row_record(have.schema)
    if registered is None:
        return []
    # the connector makes every column nullable (a key-only delete image leaves the others
    # empty), so a CDC row is compared with nullability set aside
    found = field_changes(_nullable(registered), _nullable(declared))
    real = [c for c in found if c.kind != "doc"]
    if not real:
        return []
    impact = field_impact(d.id, registered, declared, ctx, nullable=True)
    changes = "; ".join(c.describe(d.id) for c in real)
    return [
        Action(
            d.id,
            "subject",
            subject,
            "drift",
            f"the declared schema differs from the table's registered row ({changes}); the "
            "connector registers the table's schema when the table changes",
            impact=impact,
        )
    ]


def _same(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def field_impact(
    pid: str,
    old: Mapping[str, object],
    new: Mapping[str, object],
    ctx: Context,
    nullable: bool = False,
) -> tuple[Affected, ...]:
    """Every product the change of ``pid``'s schema from ``old`` to ``new`` affects, as the
    schema controller decides it (:func:`datamesh.control.evolution.impact_of_schema_change`):
    a consumer ``breaks`` when a field it uses (``consumes:``, else what its SQL reads) is
    dropped or retyped, else it ``updates``; products further downstream follow field lineage.
    ``nullable``: compare as a CDC row, where the connector makes every column nullable."""
    if nullable:
        old, new = _nullable(old), _nullable(new)
    live = [p for p in ctx.by_id.values() if not p.retired]
    return impact_of_schema_change(pid, dict(old), dict(new), live)


def _nullable(record: Mapping[str, object]) -> dict[str, object]:
    fields = record.get("fields")
    if not isinstance(fields, list):
        return dict(record)
    out = []
    for f in fields:
        t = f.get("type")
        if not (isinstance(t, list) and "null" in t):
            t = ["null", *(t if isinstance(t, list) else [t])]
        out.append({**f, "type": t})
    return {**record, "fields": out}


# -- ACLs -------------------------------------------------------------------------------------


def _acls(
    products: Sequence[DataProduct], live: Sequence[DataProduct], observed: Observed
) -> dict[str, list[Action]]:
    """ACL actions by product: each processor's and sink's principal reads exactly its inputs
    (nothing when the cluster has no authorizer: ``observed.acls`` is None)."""
    if observed.acls is None or "kafka" in observed.unreachable:
        return {}
    out: dict[str, list[Action]] = {}
    wanted = desired_acls(live)
    for a in plan_acls(wanted, observed.acls, platform_principals(products)):
        out.setdefault(a.product, []).append(a)
    return out


# -- topics -----------------------------------------------------------------------------------


def _topics(d: DesiredProduct, observed: Observed) -> list[Action]:
    if "kafka" in observed.unreachable:
        return []
    out: list[Action] = []
    for name, settings, resource in (
        (d.topic, d.topic_settings, "topic"),
        (d.dlq, d.dlq_settings, "dlq_topic"),
    ):
        if name is None or settings is None:
            continue
        for step in plan_topic(name, settings, observed.topics.get(name)):
            if isinstance(step, CreateTopic):
                out.append(
                    Action(
                        d.id,
                        resource,  # type: ignore[arg-type]
                        name,
                        "create",
                        step.describe().removeprefix(f"create topic {name} "),
                        {
                            "partitions": settings.partitions,
                            "replication_factor": settings.replication_factor,
                            "retention_ms": settings.retention_ms,
                            "cleanup_policy": settings.cleanup_policy,
                        },
                    )
                )
            elif isinstance(step, Drift):
                repairable = step.setting in REPAIRABLE_TOPIC_SETTINGS
                fix = (
                    "apply --repair sets it back"
                    if repairable
                    else "never changed by the platform (keys would move); edit the declaration"
                )
                out.append(
                    Action(
                        d.id,
                        resource,  # type: ignore[arg-type]
                        name,
                        "drift",
                        f"{step.setting} is {step.actual}, declared {step.expected}; {fix}",
                        {"configs": {step.setting: step.expected}} if repairable else {},
                        gate="repair" if repairable else "",
                    )
                )
    return out


# -- connectors -------------------------------------------------------------------------------


def _connectors(live: Sequence[DataProduct], observed: Observed) -> dict[str, list[Action]]:
    """Each connector's actions (:func:`datamesh.control.connectors.plan_connector`) by the
    product they belong to; ``in_sync`` ones are left out."""
    if "connectors" in observed.unreachable:
        return {}
    out: dict[str, list[Action]] = {}
    for spec in connectors.plan(live):
        owner = connectors.products_by_table(spec, live)
        for a in connectors.plan_connector(spec, observed.connectors.get(spec.name), owner.get):
            if a.verb != "in_sync":
                out.setdefault(a.product, []).append(a)
    return out


def _connectors_after_their_topics(
    actions: list[Action], live: Sequence[DataProduct]
) -> list[Action]:
    """Move each connector's actions after the last action of any product it captures: a
    connector starts on all the tables of its database and creates the topics that do not exist
    yet with its own defaults, so every declared topic must exist before it starts."""
    members: dict[str, set[str]] = {}
    for p in live:
        conn = _connector_name(p)
        if conn:
            members.setdefault(conn, set()).add(p.id)
    moved = [a for a in actions if a.resource == "connector"]
    out = [a for a in actions if a.resource != "connector"]
    for conn, ids in sorted(members.items()):
        mine = [a for a in moved if a.name == conn]
        if not mine:
            continue
        last = max((i for i, a in enumerate(out) if a.product in ids), default=len(out) - 1)
        out[last + 1 : last + 1] = mine
    return out


def _connector_name(p: DataProduct) -> str | None:
    return names.connector(p.domain, p.source.database) if p.source else None


# -- sink tables ------------------------------------------------------------------------------


def _sink_table(d: DesiredProduct, observed: Observed, ctx: Context) -> list[Action]:
    p = d.product
    if p.kind != "iceberg_sink" or d.sink_table is None or "iceberg" in observed.unreachable:
        return []
    schema = layout.effective_schema(p, ctx.by_id) or {}
    columns = tuple(str(f["name"]) for f in schema.get("fields", []))
    have = observed.sink_tables.get(d.sink_table)
    if have is None:
        return [Action(d.id, "sink_table", d.sink_table, "create", "create the Iceberg table")]
    out: list[Action] = []
    missing = [c for c in columns if c not in have.columns]
    if missing:
        out.append(
            Action(
                d.id,
                "sink_table",
                d.sink_table,
                "update",
                f"add column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                {"add": missing},
            )
        )
    declared = (
        tuple(partitioning.render(partitioning.parse(t)) for t in p.sink.partition_by)
        if p.sink
        else ()
    )
    if declared != have.partition_by:
        out.append(
            Action(
                d.id,
                "sink_table",
                d.sink_table,
                "drift",
                f"partitioned by ({', '.join(have.partition_by) or 'nothing'}), declared "
                f"({', '.join(declared) or 'nothing'}); the platform never re-partitions a "
                "table: evolve it by hand (ALTER TABLE ... partition evolution) or sink into "
                "a new table",
            )
        )
    return out


# -- schema evolution -------------------------------------------------------------------------


def _evolution(live: Sequence[DataProduct], observed: Observed) -> dict[str, list[Action]]:
    """The schema controller's actions by product (:mod:`datamesh.control.pausing`): pause a job
    an upstream change breaks, resume it once its declaration no longer uses what changed,
    redeploy it for a change it does not use. A pipeline that stays paused is reported as
    ``drift`` naming the pause (a human must update the consumer or revert the change)."""
    if "registry" in observed.unreachable or "flink" in observed.unreachable:
        return {}
    out: dict[str, list[Action]] = {}
    found = plan_evolution(live, observed.deployed_inputs, observed.latest_inputs, observed.paused)
    for a in found:
        if a.verb == "in_sync":  # still paused: the consumer still uses what changed
            a = replace(a, verb="drift", detail=f"paused: {a.detail}")
        out.setdefault(a.product, []).append(a)
    for pid, pause in observed.paused.items():  # paused, but no deployed baseline to compare
        if pid not in out and any(p.id == pid for p in live):
            job = next(names.flink_job(p) for p in live if p.id == pid)
            out[pid] = [Action(pid, "flink_job", job, "drift", f"paused: {pause.describe()}")]
    return out


# -- Flink jobs -------------------------------------------------------------------------------


def _job(d: DesiredProduct, observed: Observed) -> list[Action]:
    if d.job is None or "flink" in observed.unreachable:
        return []
    have = observed.jobs.get(d.job)
    applied = observed.applied.get(d.id)
    if have is None or not have.active:
        state = have.state if have is not None else "never run"
        return [
            Action(
                d.id,
                "flink_job",
                d.job,
                "create",
                f"deploy the job ({state}; restores its recorded savepoint or checkpoint)",
            )
        ]
    if applied is None:
        return [
            Action(
                d.id,
                "flink_job",
                d.job,
                "update",
                "re-apply the running job (the controller has no record of it): validate its "
                "SQL, upgrade from a savepoint if its statements changed",
            )
        ]
    if applied.fingerprint != d.fingerprint:
        return [
            Action(
                d.id,
                "flink_job",
                d.job,
                "update",
                "the declaration changed: validate, then upgrade from a savepoint",
            )
        ]
    return []


# -- retirement -------------------------------------------------------------------------------


def _retirements(products: Sequence[DataProduct], observed: Observed, ctx: Context) -> list[Action]:
    declared = {p.id for p in products if not p.retired}
    domains = {p.domain for p in products}
    retiring = [
        a
        for pid, a in observed.applied.items()
        if pid not in declared and pid.split(".", 1)[0] in domains
    ]
    order = {a.product: i for i, a in enumerate(_consumers_first(retiring))}
    out: list[Action] = []
    for a in sorted(retiring, key=lambda a: order[a.product]):
        readers = list(ctx.consumers.get(a.product, ()))
        if readers:
            names_ = ", ".join(f"{c.id} ({_owners(c.owners)})" for c in readers)
            out.append(
                Action(
                    a.product,
                    "product",
                    a.product,
                    "refuse",
                    f"retiring it is refused while {names_} still read it; retire or change "
                    "them first",
                    impact=tuple(Affected(c.id, c.owners, "breaks") for c in readers),
                )
            )
            continue
        out += _teardown(a, observed)
    return out


def _owners(owners: Sequence[str]) -> str:
    return ("owners " if len(owners) > 1 else "owner ") + ", ".join(owners)


def _consumers_first(retiring: Sequence[Applied]) -> list[Applied]:
    ids = {a.product for a in retiring}
    done: list[Applied] = []
    seen: set[str] = set()
    by_id = {a.product: a for a in retiring}

    def visit(pid: str) -> None:
        if pid in seen:
            return
        seen.add(pid)
        for other in sorted(ids):
            if pid in by_id[other].inputs:
                visit(other)
        done.append(by_id[pid])

    for pid in sorted(ids):
        visit(pid)
    return done


def _teardown(a: Applied, observed: Observed) -> list[Action]:
    """What of ``a`` still exists, to be removed (what is already gone is not planned again)."""
    pid = a.product
    out: list[Action] = []
    job = observed.jobs.get(a.job) if a.job else None
    if a.job and job is not None and job.active:
        out.append(Action(pid, "flink_job", a.job, "delete", "stop the job with a final savepoint"))
    if a.connector and a.connector in observed.orphans:
        out.append(
            Action(
                pid,
                "connector",
                a.connector,
                "delete",
                "stop it (no declared table of its database is left) and drop its publication "
                "and replication slot, so the source stops retaining WAL for it",
                {"domain": pid.split(".", 1)[0], "database": a.database},
                gate="allow_delete",
            )
        )
    if a.sink_table and (a.kind != "iceberg_sink" or a.sink_table in observed.sink_tables):
        out.append(
            Action(
                pid,
                "sink_table",
                a.sink_table,
                "delete",
                "drop the table and its data",
                {"kind": a.kind},
                gate="allow_delete",
            )
        )
    for subject in a.subjects:
        if subject in observed.subjects:
            out.append(Action(pid, "subject", subject, "delete", "delete every version"))
    for name, resource in ((a.dlq, "dlq_topic"), (a.topic, "topic")):
        if name and name in observed.topics:
            out.append(
                Action(
                    pid,
                    resource,  # type: ignore[arg-type]
                    name,
                    "delete",
                    "delete the topic",
                    gate="allow_delete",
                )
            )
    out.append(
        Action(pid, "product", pid, "delete", "forget the product once its resources are gone")
    )
    return out
