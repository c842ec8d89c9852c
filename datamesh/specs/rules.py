"""Rules that span products and files: kinds, references, name collisions and cycles."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from datamesh import names
from datamesh.errors import SpecError
from datamesh.specs import partitioning
from datamesh.specs import sink_layout as layout
from datamesh.specs.access_rules import check_access
from datamesh.specs.processor_rules import check_processor
from datamesh.specs.product import DataProduct
from datamesh.specs.source_map import SourceMap, field_path


@dataclass(frozen=True)
class Located:
    """A product and where it was declared (file and index in ``products``)."""

    product: DataProduct
    file: Path
    index: int


def check_all(items: list[Located], source_map: SourceMap) -> None:
    """Raise the first :class:`SpecError` found; checks run from local to global."""
    fail = _failer(source_map)
    for item in items:
        _check_kind(item, fail)
    _check_unique(items, fail)
    by_id = {item.product.id: item for item in items}
    products = {pid: item.product for pid, item in by_id.items()}
    for item in items:
        _check_inputs(item, by_id, fail)
        check_access(item.product, products, partial(fail, item))
        check_processor(item.product, products, partial(fail, item))
        _check_key(item, fail)
        _check_consumes(item, by_id, fail)
        _check_sink(item, by_id, fail)
    _check_collisions(items, fail)
    _check_acyclic(items, by_id, fail)


Fail = Callable[[Located, list[str | int], str, str], SpecError]


def _failer(source_map: SourceMap) -> Fail:
    def fail(item: Located, loc: list[str | int], problem: str, fix: str) -> SpecError:
        full: list[str | int] = ["products", item.index, *loc]
        return SpecError(
            str(item.file), field_path(full), problem, fix, source_map.line(item.file, full)
        )

    return fail


def _check_kind(item: Located, fail: Fail) -> None:
    p = item.product
    if p.kind == "cdc":
        if p.source is None:
            raise fail(
                item,
                ["source"],
                "a cdc product needs a source",
                "add `source: {database: <db>, table: <schema>.<table>}`",
            )
        if p.inputs:
            raise fail(
                item,
                ["inputs"],
                "a cdc product reads a table, not other products",
                "remove `inputs` or make this a processor",
            )
        if not p.key:
            raise fail(
                item,
                ["key"],
                "a cdc product needs the table's primary key columns",
                "add `key: [<primary key column>, ...]`",
            )
    elif p.source is not None:
        raise fail(
            item,
            ["source"],
            f"only cdc products have a source, this is {p.kind}",
            "remove `source` or change `kind` to cdc",
        )
    if p.kind in ("cdc", "processor") and p.value_schema is None:
        raise fail(
            item,
            ["schema"],
            f"a {p.kind} product needs an Avro value schema",
            "add `schema: <name>.avsc` next to products.yaml",
        )
    if p.kind == "processor" and p.sql is None and (p.processor or {}).get("type", "sql") == "sql":
        raise fail(
            item,
            ["sql"],
            "a SQL processor needs its query",
            "add `sql: <name>.sql` or a typed `processor: {type: filter, ...}`",
        )
    if p.kind == "processor" and not p.inputs:
        raise fail(
            item,
            ["inputs"],
            "a processor needs at least one input",
            "add `inputs: [<domain>.<product>]`",
        )
    if p.sink is not None and not p.is_sink:
        raise fail(
            item,
            ["sink"],
            f"only sinks (iceberg_sink, postgres_sink) take `sink:`, this is {p.kind}",
            "remove `sink:` or change `kind`",
        )
    if p.slo is not None and p.slo.latency_p99 is not None and p.kind != "cdc":
        raise fail(
            item,
            ["slo", "latency_p99"],
            f"latency_p99 is measured where the source commit time travels with the data: cdc "
            f"products (commit -> publish); a {p.kind}'s output does not carry it",
            "remove `latency_p99` here and declare it on the cdc product this one reads",
        )
    if p.heartbeat is not None and p.kind != "cdc":
        raise fail(
            item,
            ["heartbeat"],
            f"heartbeats start at a CDC source's log; a {p.kind} gets them from the cdc "
            "products it reads",
            "remove `heartbeat` here and declare `heartbeat: {every: 10s}` on the cdc product",
        )
    if p.is_sink and len(p.inputs) != 1:
        raise fail(
            item,
            ["inputs"],
            f"a sink reads exactly one product, found {len(p.inputs)}",
            "list one input: `inputs: [<domain>.<product>]`",
        )


def _check_unique(items: list[Located], fail: Fail) -> None:
    seen: dict[str, Located] = {}
    for item in items:
        first = seen.setdefault(item.product.id, item)
        if first is not item:
            raise fail(
                item,
                ["name"],
                f"product {item.product.id!r} is declared twice "
                f"(first in {first.file} products[{first.index}])",
                "rename one of them or merge the declarations",
            )


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else "declare that product first"


def _check_inputs(item: Located, by_id: dict[str, Located], fail: Fail) -> None:
    p = item.product
    for j, ref in enumerate(p.inputs):
        if ref == p.id:
            raise fail(
                item, ["inputs", j], f"{p.id} lists itself as an input", "remove it from inputs"
            )
        target = by_id.get(ref)
        if target is None:
            raise fail(
                item,
                ["inputs", j],
                f"unknown input {ref!r} (write <domain>.<product>)",
                _suggest(ref, by_id),
            )
        if p.is_sink and not target.product.is_kafka_backed:
            raise fail(
                item,
                ["inputs", j],
                f"a sink reads a Kafka-backed product; {ref} is {target.product.kind}",
                "point the sink at a cdc or processor product",
            )


def _check_key(item: Located, fail: Fail) -> None:
    fields = item.product.field_names()
    for j, key in enumerate(item.product.key):
        if fields and key not in fields:
            raise fail(
                item,
                ["key", j],
                f"key field {key!r} is not in the schema",
                f"use one of {', '.join(fields)}",
            )


def _check_consumes(item: Located, by_id: dict[str, Located], fail: Fail) -> None:
    p = item.product
    for ref, used in p.consumes.items():
        if ref not in p.inputs:
            raise fail(
                item,
                ["consumes", ref],
                f"{ref!r} is not one of this product's inputs",
                f"consume from one of {', '.join(p.inputs) or '(no inputs)'}",
            )
        available = by_id[ref].product.field_names()
        for j, name in enumerate(used):
            if name not in available:
                raise fail(
                    item,
                    ["consumes", ref, j],
                    f"{ref} has no field {name!r}",
                    _suggest(name, available),
                )


def _check_sink(item: Located, by_id: dict[str, Located], fail: Fail) -> None:
    """Key, mode and partitioning of a sink, against its input's schema."""
    p = item.product
    if p.audit_every is not None and not p.is_sink:
        raise fail(
            item,
            ["audit"],
            f"a {p.kind} product is not audited: an audit compares a sink table with its CDC "
            "source",
            "remove `audit:`, or declare it on an iceberg_sink or postgres_sink",
        )
    if not p.is_sink or p.sink is None:
        return
    source = by_id[p.inputs[0]].product
    fields = list((source.value_schema or {}).get("fields", []))
    key = p.key or source.key
    for j, name in enumerate(p.key):
        if fields and name not in [f["name"] for f in fields]:
            raise fail(
                item,
                ["key", j],
                f"{source.id} has no field {name!r}",
                _suggest(name, [f["name"] for f in fields]),
            )
    if not key and (p.kind == "postgres_sink" or p.sink.mode == "upsert"):
        what = "a postgres_sink" if p.kind == "postgres_sink" else "an upsert sink"
        raise fail(
            item,
            ["key"],
            f"{what} writes by key, and neither it nor its input {source.id} declares one",
            f"declare `key: [...]` here or on {source.id}"
            + ("" if p.kind == "postgres_sink" else ", or use `sink: {mode: append}`"),
        )
    mode = p.sink.mode or ("upsert" if key else "append")
    columns = {f["name"]: f["type"] for f in layout.table_fields(fields, mode)}
    for j, text in enumerate(p.sink.partition_by):
        try:
            partitioning.check(partitioning.parse(text), columns)
        except partitioning.PartitionError as exc:
            raise fail(
                item,
                ["sink", "partition_by", j],
                str(exc),
                "partition by a column of the input with a transform its type supports",
            ) from None


def _check_collisions(items: list[Located], fail: Fail) -> None:
    seen: dict[str, Located] = {}
    for item in items:
        if not item.product.is_kafka_backed:
            continue
        topic = names.topic(item.product)
        first = seen.setdefault(names.kafka_collision_key(topic), item)
        if first is not item:
            other = names.topic(first.product)
            raise fail(
                item,
                ["name"],
                f"topic {topic!r} collides with {other!r} of "
                f"{first.product.id} (Kafka treats '.' and '_' alike)",
                "rename one of the products",
            )


def _check_acyclic(items: list[Located], by_id: dict[str, Located], fail: Fail) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(pid: str, path: list[str]) -> None:
        if state.get(pid) == 2:
            return
        if state.get(pid) == 1:
            cycle = [*path[path.index(pid) :], pid]
            raise fail(
                by_id[pid],
                ["inputs"],
                f"inputs form a cycle: {' -> '.join(cycle)}",
                "remove one of these inputs",
            )
        state[pid] = 1
        for ref in by_id[pid].product.inputs:
            visit(ref, [*path, pid])
        state[pid] = 2

    for item in items:
        visit(item.product.id, [])
