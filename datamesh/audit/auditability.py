"""Which sinks can be audited against their CDC source, and what an audit compares.

Contract (pure: declarations in, :class:`Auditability` out; no network):

- A sink is auditable when it is an ``upsert`` table (one row per key: an ``append`` table is a
  change log) whose lineage reaches exactly one CDC source through *key-preserving* steps: each
  processor between them reads one input, has no join, union, aggregation (``GROUP BY``, an
  aggregate function, ``DISTINCT``, a window table function) nor filter (``WHERE``: the sink
  would hold a subset of the source's keys), and selects every key column of its input as a
  plain column (renames allowed) as its own key. Then the sink's key maps one to one onto the
  source table's key.
- ``columns`` lists the sink columns carried unchanged from a source column (through renames),
  key columns included, as ``(sink column, source column)``; a computed column (``UPPER(t)``)
  is not carried and is named in ``not_compared``.
- Otherwise ``reason`` says why, naming the product whose step breaks the key
  (``aggregation changes the key``, ``join of ...``). A processor whose SQL cannot be read makes
  the sink not auditable, with the parser's reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from datamesh.errors import MeshError
from datamesh.specs.product import CdcSource, DataProduct

Pairs = tuple[tuple[str, str], ...]  # (column here, source column)
_DIALECT = "spark, normalization_strategy=case_sensitive"  # as datamesh.flink.lineage reads SQL
_WINDOW_TVF = re.compile(r"\bTABLE\s*\(\s*(TUMBLE|HOP|CUMULATE|SESSION)\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Auditability:
    """Whether ``product`` (a sink) can be audited and, if so, against what.

    ``source_product`` is the CDC product whose table is compared; ``key`` maps the sink's key
    columns to the source's, ``columns`` every carried column (key first).
    """

    product: str
    auditable: bool
    reason: str = ""
    source_product: str = ""
    source: CdcSource | None = None
    key: Pairs = ()
    columns: Pairs = ()
    not_compared: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for ``mesh validate``."""
        if not self.auditable:
            return f"{self.product}: not auditable: {self.reason}"
        assert self.source is not None
        table = f"{self.source.database}.{self.source.schema}.{self.source.table}"
        key = ", ".join(a if a == b else f"{a} = {b}" for a, b in self.key)
        extra = f"; not compared: {', '.join(self.not_compared)}" if self.not_compared else ""
        return (
            f"{self.product}: auditable against {table} (key {key}; "
            f"{len(self.columns)} columns){extra}"
        )


@dataclass(frozen=True)
class _Carried:
    """What a product carries of a CDC table: source key and column mapping (name here ->
    source column) or the reason it does not."""

    source_product: str = ""
    source: CdcSource | None = None
    source_key: tuple[str, ...] = ()
    columns: Mapping[str, str] | None = None
    reason: str = ""


def analyse(product: DataProduct, by_id: Mapping[str, DataProduct]) -> Auditability:
    """The auditability of sink ``product`` (``by_id``: every product, inputs included)."""
    if not product.is_sink or product.sink is None:
        return Auditability(product.id, False, f"a {product.kind} product is not a sink")
    if product.sink.mode == "append":
        return Auditability(
            product.id,
            False,
            "an append table keeps every change (a change log), not one row per key",
        )
    upstream = by_id[product.inputs[0]]
    carried = _carried(upstream, by_id)
    if carried.columns is None:
        return Auditability(product.id, False, carried.reason)
    computed = tuple(f for f in upstream.field_names() if f not in carried.columns)
    return _key_mapping(product.id, product.key, carried, computed)


def _key_mapping(
    pid: str, key: Sequence[str], carried: _Carried, not_compared: tuple[str, ...]
) -> Auditability:
    assert carried.columns is not None
    mapped = [(k, carried.columns.get(k)) for k in key]
    if not key or any(src is None for _, src in mapped):
        lost = ", ".join(k for k, src in mapped if src is None) or "(none)"
        return Auditability(pid, False, f"its key {lost} is not a source column")
    if sorted(str(s) for _, s in mapped) != sorted(carried.source_key):
        return Auditability(
            pid,
            False,
            f"its key ({', '.join(key)}) does not map to the source key "
            f"({', '.join(carried.source_key)}) of {carried.source_product}",
        )
    key_pairs = tuple((k, str(s)) for k, s in mapped)
    rest = tuple((c, s) for c, s in carried.columns.items() if c not in key)
    return Auditability(
        pid,
        True,
        source_product=carried.source_product,
        source=carried.source,
        key=key_pairs,
        columns=key_pairs + rest,
        not_compared=not_compared,
    )


def _carried(p: DataProduct, by_id: Mapping[str, DataProduct]) -> _Carried:
    """What ``p``'s rows carry of one CDC table, following processors upstream."""
    if p.kind == "cdc":
        return _Carried(p.id, p.source, p.key, {f: f for f in p.field_names()})
    if p.kind != "processor":
        return _Carried(reason=f"{p.id} is a {p.kind}, not a CDC source or processor")
    if len(p.inputs) != 1:
        return _Carried(reason=f"{p.id} joins or unions {', '.join(p.inputs)}")
    step = processor_step(p, by_id)
    if isinstance(step, str):
        return _Carried(reason=f"{p.id}: {step}")
    upstream = _carried(by_id[p.inputs[0]], by_id)
    if upstream.columns is None:
        return upstream
    renames = {out: upstream.columns[src] for out, src in step.items() if src in upstream.columns}
    inverse = {src: out for out, src in renames.items()}
    kept_key = [inverse.get(k) for k in upstream.source_key]
    if any(k is None for k in kept_key) or (p.key and sorted(p.key) != sorted(map(str, kept_key))):
        return _Carried(
            reason=f"{p.id}: its key ({', '.join(p.key) or 'none'}) is not the plain key "
            f"({', '.join(upstream.source_key)}) of {upstream.source_product}",
        )
    return _Carried(upstream.source_product, upstream.source, upstream.source_key, renames)


def processor_step(p: DataProduct, by_id: Mapping[str, DataProduct]) -> dict[str, str] | str:
    """The plain columns of ``p``'s query (output name -> input column), or why the query does
    not keep its input's rows one for one."""
    from datamesh.flink.job import from_product  # local: the flink package loads its clients

    try:
        sql = from_product(p, by_id, processor=p.processor).sql
    except MeshError as exc:
        return f"its query cannot be built ({exc.message})"
    return query_step(sql, by_id[p.inputs[0]].field_names(), p.field_names())


def query_step(
    sql: str, input_columns: Sequence[str], output_names: Sequence[str] = ()
) -> dict[str, str] | str:
    """Pure part of :func:`processor_step`: ``sql`` over one input with ``input_columns``;
    ``output_names`` (the declared schema's fields) rename the result positionally when their
    number matches."""
    if _WINDOW_TVF.search(sql):
        return "windowed aggregation changes the key"
    try:
        tree = sqlglot.parse_one(sql, read=_DIALECT)
    except SqlglotError as exc:
        return f"its SQL cannot be analysed ({str(exc).splitlines()[0]})"
    reason = _row_changing(tree)
    if reason:
        return reason
    assert isinstance(tree, exp.Select)
    pairs: list[tuple[str, str | None]] = []
    for item in tree.selects:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star):
            pairs += [(c, c) for c in input_columns]
            continue
        inner = item.unalias()
        source = inner.name if isinstance(inner, exp.Column) else None
        pairs.append((item.alias_or_name, source))
    if len(output_names) == len(pairs):
        pairs = [(name, src) for name, (_, src) in zip(output_names, pairs, strict=True)]
    return {out: src for out, src in pairs if src is not None and src in input_columns}


def _row_changing(tree: exp.Expr) -> str | None:
    """Why ``tree`` does not map each input row to one output row with the same key."""
    if isinstance(tree, exp.SetOperation):
        return "a union mixes rows of several queries"
    if not isinstance(tree, exp.Select):
        return f"not a query ({tree.key.upper()})"
    if tree.find(exp.Join):
        return "a join: a row is made of several source rows"
    if tree.find(exp.Group) or tree.find(exp.AggFunc) or tree.args.get("distinct"):
        return "aggregation changes the key"
    if tree.find(exp.Where) or tree.find(exp.Having):
        return "a filter keeps a subset of the source's keys"
    if tree.find(exp.Subquery):
        return "a subquery: rows are derived, not carried"
    return None


def analyse_all(products: Sequence[DataProduct]) -> list[Auditability]:
    """The auditability of every sink, by product id."""
    by_id = {p.id: p for p in products}
    return [analyse(p, by_id) for p in sorted(products, key=lambda q: q.id) if p.is_sink]
