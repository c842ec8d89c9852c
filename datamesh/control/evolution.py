"""Schema evolution decided by consumers: what changed in an upstream schema, field by field, and
what that does to each product that reads it. Pure functions of schemas and declarations.

- :func:`field_changes` compares two Avro records (a CDC product's Debezium envelopes are
  compared by their row record): fields added (with or without a default), removed, retyped
  (type, nullability or logical type) and doc-only changes (doc or default; no consumer sees
  them).
- :func:`consumed_fields` is what a consumer uses of one input: its ``consumes:`` declaration,
  else every column its query reads anywhere (selected, filtered, joined, grouped — a typed
  processor's query is the one its options generate), else — for a sink — every field.
- :func:`classify` decides per consumer: ``breaks`` when a field it needs is removed or retyped
  (its pipeline is paused until its declaration or the upstream change is fixed), ``updates``
  when the change propagates (job re-derived and upgraded, sink table synced).

Sinks carry every column into a table, so a retyped column breaks them (the table's column
cannot take the new type), but a removed column does not, unless the sink needs it (its key or
a partition source): the table keeps the column, with its history, and new rows leave it null —
dropping table columns is a decision for a human, never a side effect of an upstream change.

A consumer whose use cannot be derived (its SQL does not parse, reads an unknown column) is
taken to use every field: an unknown use breaks on any removal rather than losing data silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from datamesh import lineage_graph
from datamesh.checks.schema_match import row_record
from datamesh.control.actions import Affected
from datamesh.errors import MeshError
from datamesh.specs import partitioning
from datamesh.specs.product import DataProduct
from datamesh.specs.sink_layout import CHANGELOG_FIELDS

ChangeKind = Literal["added", "removed", "retyped", "doc"]
BREAKING: frozenset[str] = frozenset({"removed", "retyped"})
_IGNORED_KEYS = ("doc", "name", "namespace", "aliases")


@dataclass(frozen=True)
class FieldChange:
    """One top-level field's change between two versions of a record.

    ``old_type``/``new_type`` are the Avro types (None when the field is absent on that side);
    ``default`` tells for an added field whether it has a default (old data reads as it).
    """

    field: str
    kind: ChangeKind
    old_type: Any = None
    new_type: Any = None
    default: bool = False

    @property
    def breaking(self) -> bool:
        """True for a removal or a retype: a consumer of the field breaks."""
        return self.kind in BREAKING

    def describe(self, product: str = "") -> str:
        """``drop column studio.movies.status``, ``retype ... (nullability)`` and the like."""
        name = f"{product}.{self.field}" if product else self.field
        if self.kind == "added":
            return f"add column {name} ({'with' if self.default else 'without'} default)"
        if self.kind == "removed":
            return f"drop column {name}"
        if self.kind == "doc":
            return f"document column {name} (doc or default only)"
        what = retype_detail(self.old_type, self.new_type)
        return f"retype column {name}: {_text(self.old_type)} -> {_text(self.new_type)} ({what})"


@dataclass(frozen=True)
class Consumer:
    """What one product uses of one input.

    ``uses``: the fields it reads (None: not derivable, so every field counts); ``carries``:
    a sink, writing every column to its table; ``needs``: for a sink, the columns it cannot do
    without (its key and partition sources).
    """

    product: str
    owners: tuple[str, ...]
    input: str
    uses: tuple[str, ...] | None
    carries: bool = False
    needs: tuple[str, ...] = ()

    def broken_by(self, change: FieldChange) -> bool:
        """True when ``change`` removes or retypes a field this consumer cannot do without."""
        if not change.breaking:
            return False
        if self.carries:
            return change.kind == "retyped" or change.field in self.needs
        return self.uses is None or change.field in self.uses

    def touched_by(self, change: FieldChange) -> bool:
        """True when ``change`` reaches this consumer (it reads or carries the field)."""
        if change.kind == "doc":
            return False
        return self.carries or self.uses is None or change.field in self.uses


# -- comparing schemas ---------------------------------------------------------------------------


def is_envelope(schema: Mapping[str, Any]) -> bool:
    """True for a Debezium envelope (``before``/``after``/``op``)."""
    names = {f.get("name") for f in schema.get("fields", [])}
    return {"before", "after", "op"} <= names


def row_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The row record of ``schema``: a Debezium envelope's, else the record itself."""
    if not is_envelope(schema):
        return dict(schema)
    row = row_record(dict(schema))
    if row is None:
        raise ValueError(f"envelope {schema.get('name')!r} has no row record in before/after")
    return row


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """The field changes from ``old`` to ``new`` (Avro records, or Debezium envelopes, whose row
    records are compared): removals and retypes in ``old``'s order, then additions in ``new``'s.
    Record names, namespaces and docs of nested types are not part of a field's type."""
    before = {f["name"]: f for f in row_of(old).get("fields", [])}
    after = {f["name"]: f for f in row_of(new).get("fields", [])}
    out: list[FieldChange] = []
    for name, f in before.items():
        g = after.get(name)
        if g is None:
            out.append(FieldChange(name, "removed", f["type"], None))
        elif _norm(f["type"]) != _norm(g["type"]):
            out.append(FieldChange(name, "retyped", f["type"], g["type"]))
        elif f.get("doc") != g.get("doc") or _default(f) != _default(g):
            out.append(FieldChange(name, "doc", f["type"], g["type"]))
    for name, g in after.items():
        if name not in before:
            out.append(FieldChange(name, "added", None, g["type"], default="default" in g))
    return out


def retype_detail(old: Any, new: Any) -> str:
    """What a retype changes: ``nullability``, ``logical type`` or ``type``."""
    (_, old_base), (new_null, new_base) = _split(old), _split(new)
    if _norm(old_base) == _norm(new_base):
        return "nullability: now " + ("optional" if new_null else "required")
    if _physical(old_base) == _physical(new_base):
        return "logical type"
    return "type"


def _split(t: Any) -> tuple[bool, Any]:
    """(nullable, the type without null)."""
    if isinstance(t, list):
        rest = [b for b in t if b != "null"]
        return len(rest) < len(t), rest[0] if len(rest) == 1 else rest
    return t == "null", t


def _physical(t: Any) -> Any:
    if isinstance(t, dict) and "logicalType" in t:
        return _norm(t["type"])
    return _norm(t)


def _norm(t: Any) -> Any:
    """A type without what does not change how values read (docs, record names)."""
    if isinstance(t, list):
        return [_norm(b) for b in t]
    if isinstance(t, dict):
        if set(t) == {"type"}:
            return _norm(t["type"])
        out = {k: _norm(v) for k, v in t.items() if k not in _IGNORED_KEYS}
        if "fields" in t:
            out["fields"] = [{"name": f["name"], "type": _norm(f["type"])} for f in t["fields"]]
        return out
    return t


def _default(f: Mapping[str, Any]) -> str | None:
    return json.dumps(f["default"], sort_keys=True) if "default" in f else None


def _text(t: Any) -> str:
    return json.dumps(_norm(t), separators=(",", ":"))


# -- what consumers use ----------------------------------------------------------------------


def consumed_fields(
    consumer: DataProduct,
    input_product: DataProduct,
    products: Mapping[str, DataProduct] | None = None,
    input_fields: Sequence[str] | None = None,
) -> tuple[str, ...] | None:
    """The fields of ``input_product`` that ``consumer`` uses; None when not derivable.

    Its ``consumes:`` declaration wins; else a processor's query says (every column read
    anywhere, :func:`datamesh.flink.lineage.columns_read`); a sink takes every field.
    ``products`` holds the consumer's other inputs (a query reading several needs their
    columns); ``input_fields`` replaces ``input_product``'s declared fields (e.g. those of a
    newly registered schema, so that ``SELECT *`` reads an added column too).
    """
    fields = tuple(input_fields) if input_fields is not None else input_product.field_names()
    if input_product.id in consumer.consumes:
        return consumer.consumes[input_product.id]
    if consumer.is_sink:
        return fields
    if consumer.kind != "processor":
        return ()
    by_id = {**(products or {}), input_product.id: input_product}
    try:
        columns = {
            pid: fields if pid == input_product.id else by_id[pid].field_names()
            for pid in consumer.inputs
        }
        return _read_by_query(consumer, columns)[input_product.id]
    except (MeshError, KeyError, ValueError):
        return None


def _read_by_query(
    consumer: DataProduct, columns: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    from datamesh.flink import templates  # local: the flink package loads its clients
    from datamesh.flink.lineage import columns_read

    spec = dict(consumer.processor or {"type": "sql"})
    if spec.get("type", "sql") == "sql":
        if not consumer.sql:
            raise ValueError(f"{consumer.id} has no query")
        sql = consumer.sql
    else:
        sql = templates.processor_sql(spec, columns)
    return columns_read(sql, columns)


def sink_needs(sink: DataProduct) -> tuple[str, ...]:
    """The input columns a sink cannot lose: its key and its partitions' source columns (an
    ``append`` table's own change-log columns are not the input's)."""
    own = {str(f["name"]) for f in CHANGELOG_FIELDS}
    needs = list(sink.key)
    for text in sink.sink.partition_by if sink.sink is not None else ():
        try:
            column = partitioning.parse(text).column
        except partitioning.PartitionError:
            continue  # refused at load already
        if column not in needs and column not in own:
            needs.append(column)
    return tuple(needs)


def consumer_of(
    consumer: DataProduct,
    input_product: DataProduct,
    products: Mapping[str, DataProduct] | None = None,
    input_fields: Sequence[str] | None = None,
) -> Consumer:
    """``consumer``'s use of ``input_product`` (see :func:`consumed_fields`)."""
    uses = consumed_fields(consumer, input_product, products, input_fields)
    if consumer.is_sink and input_product.id not in consumer.consumes:
        return Consumer(
            consumer.id, consumer.owners, input_product.id, uses, True, sink_needs(consumer)
        )
    return Consumer(consumer.id, consumer.owners, input_product.id, uses)


def consumers_of(
    product_id: str,
    products: Sequence[DataProduct],
    input_fields: Sequence[str] | None = None,
) -> list[Consumer]:
    """Every live product reading ``product_id``, by product id."""
    by_id = {p.id: p for p in products}
    source = by_id[product_id]
    return [
        consumer_of(p, source, by_id, input_fields)
        for p in sorted(products, key=lambda p: p.id)
        if product_id in p.inputs and not p.retired
    ]


# -- deciding --------------------------------------------------------------------------------


def classify(changes: Sequence[FieldChange], consumers: Sequence[Consumer]) -> list[Affected]:
    """Per consumer the change reaches: ``breaks`` naming the removed or retyped fields it
    needs, else ``updates`` naming the changed fields it reads or carries (``fields`` empty when
    it reads none of them: only its input's schema changes). Doc-only changes affect nobody."""
    if not any(c.kind != "doc" for c in changes):
        return []
    out: list[Affected] = []
    for consumer in consumers:
        broken = tuple(c.field for c in changes if consumer.broken_by(c))
        if broken:
            out.append(Affected(consumer.product, consumer.owners, "breaks", broken))
            continue
        touched = tuple(c.field for c in changes if consumer.touched_by(c))
        out.append(Affected(consumer.product, consumer.owners, "updates", touched))
    return out


def impact_of_schema_change(
    product_id: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    products: Sequence[DataProduct],
) -> tuple[Affected, ...]:
    """Every product a change of ``product_id``'s schema from ``old`` to ``new`` affects.

    Its direct consumers as :func:`classify` decides, then — through field-level lineage
    (:mod:`datamesh.lineage_graph`) — the products further downstream whose fields derive from
    a changed field through a consumer that is not broken (``updates``, naming their fields).
    What is downstream of a broken consumer is not listed: its pipeline is paused before it.
    """
    changes = field_changes(old, new)
    new_fields = tuple(f["name"] for f in row_of(new).get("fields", []))
    old_fields = tuple(f["name"] for f in row_of(old).get("fields", []))
    every = (*old_fields, *(f for f in new_fields if f not in old_fields))
    direct = classify(changes, consumers_of(product_id, products, every))
    broken = {a.product for a in direct if a.effect == "breaks"}
    seen = {a.product for a in direct} | {product_id}
    graph = lineage_graph.build(_with_fields(products, product_id, every))
    found: dict[str, list[str]] = {}
    for change in changes:
        if change.kind == "doc":
            continue
        start = lineage_graph.field_id(product_id, change.field)
        if start not in graph.nodes:
            continue
        for node_id in _downstream_avoiding(graph, start, broken):
            node = graph.nodes[node_id]
            if node.product is None or node.product in seen:
                continue
            name = node_id[len(node.product) + 1 :]
            found.setdefault(node.product, [])
            if name not in found[node.product]:
                found[node.product].append(name)
    by_id = {p.id: p for p in products}
    further = [
        Affected(pid, by_id[pid].owners, "updates", tuple(fields))
        for pid, fields in sorted(found.items())
    ]
    return (*direct, *further)


def _downstream_avoiding(
    graph: lineage_graph.LineageGraph, start: str, broken: set[str]
) -> list[str]:
    """Field nodes derived from ``start``, not walking through the fields of broken products."""
    out: list[str] = []
    queue = list(graph.children[start])
    seen: set[str] = set()
    while queue:
        node = queue.pop(0)
        if node in seen or graph.nodes[node].product in broken:
            continue
        seen.add(node)
        out.append(node)
        queue.extend(graph.children[node])
    return out


def _with_fields(
    products: Sequence[DataProduct], product_id: str, fields: Sequence[str]
) -> list[DataProduct]:
    """``products`` with ``product_id`` given every field of both versions, so that lineage
    follows an added field through ``SELECT *`` and the sinks carrying it."""
    out = []
    for p in products:
        if p.id == product_id and p.value_schema is not None:
            have = {f["name"]: f for f in p.value_schema.get("fields", [])}
            extra = [{"name": f, "type": ["null", "string"]} for f in fields if f not in have]
            p = replace(p, value_schema={**p.value_schema, "fields": [*have.values(), *extra]})
        out.append(p)
    return out
