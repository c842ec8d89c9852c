"""The schema controller: pause a pipeline an upstream schema change breaks, resume it once fixed.

Every processor and ``postgres_sink`` job is deployed against its inputs' registered value
schemas, which the platform records (:mod:`datamesh.flink.deployed_inputs`). Upstream then
moves on — a CDC connector registers a new envelope after ``ALTER TABLE ... DROP COLUMN``, a
processor registers a new output. :func:`plan_evolution` (pure) compares, per consumer and
input, the schema deployed against with the latest registered one and decides with
:mod:`datamesh.control.evolution`:

- ``pause`` — the change removes or retypes a field the consumer uses: its job is stopped
  with a savepoint (the CDC connector keeps its slot and Kafka keeps the input, so nothing is
  lost), and the pause is recorded (:mod:`datamesh.pauses`): deploying the product leaves it
  stopped and its ``upstream_schema`` check fails naming the field, change, consumer, owners;
- ``resume`` — a paused consumer no longer breaks (its declaration stopped using the field, or
  the change was reverted): its declared job starts from the pause's savepoint, so it
  processes every change made meanwhile; then the pause record goes and the deployed schemas
  move to the latest;
- ``update`` — the change touches nothing the consumer uses: the job is deployed as declared
  (an upgrade from a savepoint when that changes its SQL) and the deployed schemas move on.

:func:`apply_evolution` carries out one action; :func:`reconcile_schemas` observes, plans and
applies — what ``mesh apply`` and the drift sensor call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from datamesh import names, pauses
from datamesh.control.actions import Action, Affected
from datamesh.control.evolution import FieldChange, classify, consumer_of, field_changes, row_of
from datamesh.errors import MeshError, TerminalError
from datamesh.flink import FlinkJobs, JobStatus, deployed_inputs, record
from datamesh.flink.connections import Connections, resolve
from datamesh.flink.declared import deploy_declared, job_for
from datamesh.flink.deployed_inputs import InputSchema
from datamesh.schema_client import SchemaClient
from datamesh.specs.product import DataProduct

log = logging.getLogger("datamesh.control")
JOB_KINDS = frozenset({"processor", "postgres_sink"})
Deployed = Mapping[str, Mapping[str, InputSchema]]  # consumer id -> input id -> schema


def plan_evolution(
    products: Sequence[DataProduct],
    deployed: Deployed,
    latest: Mapping[str, InputSchema],
    paused: Mapping[str, pauses.Pause],
) -> list[Action]:
    """``pause`` / ``resume`` / ``update`` actions (module docstring) for every job-backed
    consumer, by product id; a consumer that stays paused is ``in_sync`` with its pause as
    detail. ``deployed``: the schemas each consumer was last deployed against; ``latest``: the
    latest registered value schema of each input product; ``paused``: the recorded pauses."""
    by_id = {p.id: p for p in products}
    actions: list[Action] = []
    for p in sorted(products, key=lambda q: q.id):
        if p.kind not in JOB_KINDS or p.retired or p.id not in deployed:
            continue
        action = _decide(p, by_id, deployed[p.id], latest, paused.get(p.id))
        if action is not None:
            actions.append(action)
    return actions


def _decide(
    p: DataProduct,
    by_id: Mapping[str, DataProduct],
    baseline: Mapping[str, InputSchema],
    latest: Mapping[str, InputSchema],
    pause: pauses.Pause | None,
) -> Action | None:
    job = names.flink_job(p)
    breaks: list[tuple[str, InputSchema, list[FieldChange], Affected]] = []
    updates: list[tuple[str, InputSchema, list[FieldChange], Affected]] = []
    for iid in p.inputs:
        old, new = baseline.get(iid), latest.get(iid)
        if old is None or new is None or old.schema_id == new.schema_id:
            continue
        changes = field_changes(old.schema, new.schema)
        fields = _union(old.schema, new.schema)
        consumer = consumer_of(p, by_id[iid], by_id, fields)
        for affected in classify(changes, [consumer]):
            found = (iid, new, changes, affected)
            (breaks if affected.effect == "breaks" else updates).append(found)
    if breaks:
        iid, new, changes, affected = breaks[0]
        if pause is not None and pause.savepoint is not None:
            return Action(p.id, "flink_job", job, "in_sync", pause.describe())
        return _pause(p, job, iid, new, changes, affected)
    if pause is not None:
        return _resume(p, job, pause, baseline, latest)
    if updates:
        return _update(p, job, updates, baseline, latest)
    return None


def _pause(
    p: DataProduct,
    job: str,
    iid: str,
    new: InputSchema,
    changes: list[FieldChange],
    affected: Affected,
) -> Action:
    change = "; ".join(c.describe(iid) for c in changes if c.field in affected.fields)
    params = {
        "input": iid,
        "fields": list(affected.fields),
        "change": change,
        "owners": list(p.owners),
        "declared_in": str(p.declared_in),
        "schema_id": new.schema_id,
    }
    return Action(p.id, "flink_job", job, "pause", change, params, impact=(affected,))


def _resume(
    p: DataProduct,
    job: str,
    pause: pauses.Pause,
    baseline: Mapping[str, InputSchema],
    latest: Mapping[str, InputSchema],
) -> Action:
    detail = (
        f"{pause.change} no longer breaks {p.id}: resume from "
        f"{pause.savepoint or 'its newest checkpoint'}"
    )
    params = {"savepoint": pause.savepoint, "inputs": _ids(p, baseline, latest)}
    return Action(p.id, "flink_job", job, "resume", detail, params)


def _update(
    p: DataProduct,
    job: str,
    updates: list[tuple[str, InputSchema, list[FieldChange], Affected]],
    baseline: Mapping[str, InputSchema],
    latest: Mapping[str, InputSchema],
) -> Action:
    said = [c.describe(iid) for iid, _, changes, _ in updates for c in changes if c.kind != "doc"]
    # A keyed processor reading an added column rereads its inputs: the changes carrying the
    # column may be behind the running job's offsets already (upserts converge). A sink's
    # deployment rereads by itself when its table gains columns.
    reread = (
        p.kind == "processor"
        and bool(p.key)
        and any(
            c.kind == "added" and c.field in affected.fields
            for _, _, changes, affected in updates
            for c in changes
        )
    )
    how = "rereading its inputs" if reread else "redeployed as declared"
    detail = f"{'; '.join(said)}: propagates to {p.id} ({how})"
    impact = tuple(affected for *_, affected in updates)
    params = {"inputs": _ids(p, baseline, latest), "reread": reread}
    return Action(p.id, "flink_job", job, "update", detail, params, impact=impact)


def _ids(
    p: DataProduct, baseline: Mapping[str, InputSchema], latest: Mapping[str, InputSchema]
) -> dict[str, int]:
    """The schema id per input the consumer moves to: the latest, else the one it had."""
    out = {}
    for iid in p.inputs:
        found = latest.get(iid) or baseline.get(iid)
        if found is not None:
            out[iid] = found.schema_id
    return out


def _union(old: Mapping[str, object], new: Mapping[str, object]) -> tuple[str, ...]:
    """Field names of both versions' rows, old order first."""
    names_old = [str(f["name"]) for f in row_of(old).get("fields", [])]
    names_new = [str(f["name"]) for f in row_of(new).get("fields", [])]
    return (*names_old, *(n for n in names_new if n not in names_old))


# -- applying ------------------------------------------------------------------------------------


def apply_evolution(
    action: Action,
    products: Sequence[DataProduct],
    jobs: FlinkJobs,
    registry: SchemaClient,
) -> JobStatus | None:
    """Carry out one action of :func:`plan_evolution` (others: None, nothing done).

    ``pause``: the pause is recorded first (so no deployment restarts the job meanwhile), then
    the job stopped with a savepoint — a job failing on the changed schema takes none: it is
    cancelled and its last retained checkpoint is kept instead —, then that state recorded; a
    failure leaves the record without one and the next plan pauses again. ``resume``: the
    declared job starts from the savepoint; only once it runs are the deployed schemas moved
    and the pause removed. ``update``: the job is deployed as declared (a keyed processor
    carrying an added column rereads its inputs), then the deployed schemas moved.
    """
    by_id = {p.id: p for p in products}
    p = by_id[action.product]
    if action.verb == "pause":
        return _apply_pause(action, p, jobs)
    if action.verb == "resume":
        savepoint = action.params.get("savepoint")
        status = deploy_declared(jobs, p, by_id, resume_from=savepoint or _newest_state(p))
        _move_baseline(p, action.params["inputs"], registry)
        pauses.remove(p.id)
        log.info("%s: resumed (%s)", p.id, status.action)
        return status
    if action.verb == "update":
        if action.params.get("reread"):
            status = jobs.reprocess(job_for(p, by_id, jobs.conn))
        else:
            status = deploy_declared(jobs, p, by_id)
        _move_baseline(p, action.params["inputs"], registry)
        log.info("%s: %s (%s)", p.id, action.detail, status.action)
        return status
    return None


def _apply_pause(action: Action, p: DataProduct, jobs: FlinkJobs) -> JobStatus:
    params = action.params
    pause = pauses.Pause(
        product=p.id,
        input=str(params["input"]),
        fields=tuple(params["fields"]),
        change=str(params["change"]),
        owners=tuple(params["owners"]),
        declared_in=str(params["declared_in"]),
        schema_id=int(params["schema_id"]),
    )
    pauses.save(pause)
    try:
        status = jobs.stop_with_savepoint(action.name)
        taken = status.last_savepoint.path if status.last_savepoint is not None else None
        savepoint = taken if status.action == "stopped" else _newest_state(p)
    except MeshError as exc:
        # A job whose task fails on the changed schema (a required column gone: the format
        # fails rather than dead-letter, see jvm WriterSchemaMismatch) takes no savepoint. Its
        # last retained checkpoint precedes the message it cannot read: cancel, resume there.
        log.warning("%s: no savepoint (%s); cancelling, its last checkpoint is kept", p.id, exc)
        status = jobs.cancel(action.name)
        savepoint = _newest_state(p)
    if savepoint is None:
        raise TerminalError(
            f"{p.id}: paused, but job {action.name} left no savepoint or checkpoint to resume from",
            fix="check the Flink JobManager; the next reconcile tries to stop it again",
        )
    pauses.save(replace(pause, savepoint=savepoint))
    log.warning("%s: %s", p.id, replace(pause, savepoint=savepoint).describe())
    return status


def _newest_state(p: DataProduct) -> str | None:
    """The newest recorded savepoint or retained checkpoint of ``p``'s job (a job that was not
    running when it was paused)."""
    rec = record.load(names.flink_job(p))
    point = record.restore_point(rec) if rec is not None else None
    return point.path if point is not None else None


def _move_baseline(p: DataProduct, ids: Mapping[str, int], registry: SchemaClient) -> None:
    """Record the schema ids ``ids`` (by input) as what ``p`` now runs against."""
    old = deployed_inputs.load(p.id) or {}
    new = dict(old)
    for iid, schema_id in ids.items():
        was = old.get(iid)
        if was is not None and was.schema_id == schema_id:
            continue
        subject = was.subject if was is not None else ""
        new[iid] = InputSchema(subject, int(schema_id), -1, registry.by_id(int(schema_id)))
    deployed_inputs.save(p.id, new)


# -- observing ------------------------------------------------------------------------------------


def observe_latest(
    products: Sequence[DataProduct], registry: SchemaClient
) -> dict[str, InputSchema]:
    """The latest registered value schema of every product some job-backed product reads."""
    by_id = {p.id: p for p in products}
    wanted = sorted({i for p in products if p.kind in JOB_KINDS for i in p.inputs})
    out = {}
    for iid in wanted:
        subject = names.value_subject(names.topic(by_id[iid]))
        found = registry.latest(subject)
        if found is not None:
            out[iid] = InputSchema(subject, found.id, found.version, found.schema)
    return out


def reconcile_schemas(
    products: Sequence[DataProduct], conn: Connections | None = None
) -> list[Action]:
    """Observe the inputs' latest schemas, the deployed ones and the pauses; plan; apply every
    action that changes something; again while an update or resume changed what a product
    publishes (a processor's new output reaches its consumers in the next round, at most one
    round per product). Returns every action planned, round after round."""
    conn = conn or resolve()
    registry = SchemaClient(conn.registry_url, conn.registry_user_info)
    jobs = FlinkJobs(conn)
    done: list[Action] = []
    for _ in range(len(products) + 1):
        deployed = {
            p.id: found
            for p in products
            if p.kind in JOB_KINDS and (found := deployed_inputs.load(p.id)) is not None
        }
        actions = plan_evolution(
            products, deployed, observe_latest(products, registry), pauses.all_paused()
        )
        done += actions
        for action in actions:
            if action.changes:
                apply_evolution(action, products, jobs, registry)
        if not any(a.verb in ("update", "resume") for a in actions):
            break
    return done
