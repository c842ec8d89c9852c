"""Product- and field-level lineage across every declared product, for ``mesh lineage``.

Contract:

- :func:`build` is pure (no network, no schema registry). Nodes are products (``studio.movies``),
  the source tables of CDC products (``postgres://studio/public.movies``) and fields
  (``<product id>.<field>``, see :func:`field_id`); edges run from what is read to what is
  written. Product level: input → product, source table → CDC product. Field level: a CDC
  product's fields are roots; a processor's come from its SQL (a typed processor's from the SQL
  its template generates) through :func:`datamesh.flink.lineage.column_lineage`; a sink's are
  its input's, column for column (an ``append`` table's change-log columns are roots).
- Every node carries owners: its product's, or for a source table those of the CDC products
  that follow it.
- A processor field whose input columns cannot be derived keeps its node (without edges) and a
  warning names the product, the file that declares it (``<file>.sql:<line>`` when the query's
  line is known) and the reason (:func:`warnings`); nothing is dropped.
- :func:`upstream` / :func:`downstream` are transitive, nearest first, and stay on the level of
  the node they start from (edges never cross levels).
- :func:`add_parser` / :func:`run` are the ``mesh lineage`` command: an indented text tree with
  owners, JSON (nodes and edges) or Graphviz DOT text.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from datamesh.errors import MeshError, TerminalError
from datamesh.specs.sink_layout import CHANGELOG_FIELDS

if TYPE_CHECKING:
    from datamesh.specs.product import DataProduct

Level = Literal["product", "field"]
Direction = Literal["upstream", "downstream", "both"]
Origin = tuple[str, str]  # (product id, column)
Steps = Mapping[str, tuple[str, ...]]
FORMATS = ("text", "json", "dot")
HELP = "`mesh lineage <product> [--upstream|--downstream] [--field F] [--format text|json|dot]`"
DESCRIPTION = "Product- and field-level lineage of one product or field, with owners."
SOURCE_KIND = "source_table"
# column_lineage raises LineageError and from_product SpecError (both MeshErrors); KeyError is an
# input missing from the products given. Each becomes a warning, never a crash.
_UNDERIVABLE = (MeshError, KeyError)


@dataclass(frozen=True)
class Node:
    """A product, a source table or a field; ``product`` is the id of the product it belongs to
    (None for a source table) and ``kind`` that product's kind (``source_table`` otherwise)."""

    id: str
    level: Level
    kind: str
    owners: tuple[str, ...]
    product: str | None


@dataclass(frozen=True)
class LineageGraph:
    """Nodes by id, each node's direct parents and children, and warnings by product id."""

    nodes: dict[str, Node]
    parents: dict[str, tuple[str, ...]]
    children: dict[str, tuple[str, ...]]
    problems: dict[str, str]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Every (from, to) pair, sorted."""
        return sorted((a, b) for a, targets in self.children.items() for b in targets)


def field_id(product_id: str, field: str) -> str:
    """The node id of a product's field: ``studio.movies.title``."""
    return f"{product_id}.{field}"


def source_id(product: DataProduct) -> str | None:
    """The node id of a CDC product's source table: ``postgres://<database>/<schema>.<table>``."""
    src = product.source
    return None if src is None else f"postgres://{src.database}/{src.schema}.{src.table}"


def build(products: Sequence[DataProduct]) -> LineageGraph:
    """The lineage graph of ``products`` (all of them: inputs must be among them)."""
    by_id = {p.id: p for p in products}
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    problems: dict[str, str] = {}
    derived: dict[str, tuple[str, ...]] = {}  # a processor's fields, declared or derived
    # sinks last: a sink carries its input's fields, derived ones too (no declared schema)
    for p in sorted(products, key=lambda q: q.is_sink):
        nodes[p.id] = Node(p.id, "product", p.kind, p.owners, p.id)
        edges += [(i, p.id) for i in p.inputs]
        origins, problem = _field_lineage(p, by_id, derived)
        derived[p.id] = tuple(origins)
        for column, deps in origins.items():
            fid = field_id(p.id, column)
            nodes[fid] = Node(fid, "field", p.kind, p.owners, p.id)
            edges += [(field_id(pid, c), fid) for pid, c in deps]
        if problem:
            problems[p.id] = problem
    _add_sources(products, nodes, edges)
    return _graph(nodes, edges, problems)


def _add_sources(
    products: Sequence[DataProduct], nodes: dict[str, Node], edges: list[tuple[str, str]]
) -> None:
    for p in products:
        sid = source_id(p)
        if sid is None:
            continue
        owners = nodes[sid].owners if sid in nodes else ()
        merged = owners + tuple(o for o in p.owners if o not in owners)
        nodes[sid] = Node(sid, "product", SOURCE_KIND, merged, None)
        edges.append((sid, p.id))


def _graph(
    nodes: dict[str, Node], edges: list[tuple[str, str]], problems: dict[str, str]
) -> LineageGraph:
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in sorted(set(edges)):
        children[a].append(b)
        parents[b].append(a)
    return LineageGraph(
        nodes,
        {n: tuple(v) for n, v in parents.items()},
        {n: tuple(v) for n, v in children.items()},
        problems,
    )


def _field_lineage(
    p: DataProduct, by_id: Mapping[str, DataProduct], derived: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, list[Origin]], str | None]:
    """Per field of ``p``, the input fields it comes from, and a warning when not derivable;
    ``derived`` holds the fields already found for other products (a sink's input's)."""
    if p.kind == "processor":
        return _processor_lineage(p, by_id)
    if p.is_sink:
        source = by_id[p.inputs[0]]
        carried = source.field_names() or derived.get(source.id, ())
        fields: dict[str, list[Origin]] = {f: [(source.id, f)] for f in carried}
        if p.sink is not None and p.sink.mode == "append":
            fields.update({str(f["name"]): [] for f in CHANGELOG_FIELDS})
        return fields, None
    return {f: [] for f in p.field_names()}, None


def _processor_lineage(
    p: DataProduct, by_id: Mapping[str, DataProduct]
) -> tuple[dict[str, list[Origin]], str | None]:
    from datamesh.flink.job import from_product  # local: the flink package loads its clients
    from datamesh.flink.lineage import LineageError, column_lineage

    where = str(p.sql_file or p.declared_in)
    declared = p.field_names()
    try:
        job = from_product(p, by_id, processor=p.processor)
        where = job.sql_file
        inputs = {pid: by_id[pid].field_names() for pid in p.inputs}
        derived = column_lineage(job.sql, inputs, declared or None)
    except _UNDERIVABLE as exc:
        if isinstance(exc, LineageError):
            where, reason = _file_line(p, where, exc.line), exc.problem
        else:
            reason = exc.message if isinstance(exc, MeshError) else f"{type(exc).__name__}: {exc}"
        problem = f"{p.id}: field lineage not derivable from {where} ({reason})"
        return {f: [] for f in declared}, problem
    missing = [column for column, origins in derived.items() if not origins]
    if not missing:
        return derived, None
    problem = (
        f"{p.id}: no input column derived for {', '.join(missing)} from {where} "
        "(an aggregate such as COUNT(*) reads none; otherwise check the SQL)"
    )
    return derived, problem


def _file_line(p: DataProduct, where: str, line: int | None) -> str:
    """``<file>.sql:<line>`` when the query is ``p``'s ``.sql`` file, else ``where`` (a typed
    processor's query is generated: its lines are not the declaration's)."""
    typed = (p.processor or {}).get("type", "sql") != "sql"
    if line is None or typed or p.sql is None or p.sql_file is None:
        return where
    skipped = p.sql[: len(p.sql) - len(p.sql.lstrip())].count("\n")  # the job strips them
    return f"{p.sql_file}:{line + skipped}"


def warnings(graph: LineageGraph) -> list[str]:
    """One message per product whose field lineage is (partly) missing, by product id."""
    return [graph.problems[pid] for pid in sorted(graph.problems)]


def upstream(graph: LineageGraph, node: str) -> list[str]:
    """Every node ``node`` is derived from, transitively, nearest first (KeyError if unknown)."""
    return _walk(graph, graph.parents, node)


def downstream(graph: LineageGraph, node: str) -> list[str]:
    """Every node derived from ``node``, transitively, nearest first (KeyError if unknown)."""
    return _walk(graph, graph.children, node)


def _walk(graph: LineageGraph, steps: Steps, start: str) -> list[str]:
    if start not in graph.nodes:
        raise KeyError(start)
    seen: dict[str, None] = {}
    queue = deque(steps[start])
    while queue:
        node = queue.popleft()
        if node != start and node not in seen:
            seen[node] = None
            queue.extend(steps[node])
    return list(seen)


def selection(graph: LineageGraph, root: str, direction: Direction) -> list[str]:
    """``root`` and the nodes lineage reaches from it in ``direction``."""
    up = upstream(graph, root) if direction != "downstream" else []
    down = downstream(graph, root) if direction != "upstream" else []
    return [root, *up, *down]


def resolve(graph: LineageGraph, product: str | None, field: str | None) -> str:
    """The node ``mesh lineage`` starts from: the product (any node id), or one of its fields.

    ``field`` is a field name of ``product`` or a full ``<domain>.<product>.<field>`` (then
    ``product`` may be omitted). Raises :class:`TerminalError` with a suggestion when unknown.
    """
    if field and "." in field:
        node = _known(field, [n for n, v in graph.nodes.items() if v.level == "field"], "field")
        if product and graph.nodes[node].product != product:
            raise TerminalError(f"{field} is not a field of {product}", fix="drop one of them")
        return node
    if not product:
        raise TerminalError(
            "no product or field given",
            fix="name <domain>.<product>, or --field <domain>.<product>.<field>",
        )
    node = _known(product, list(graph.nodes), "product")
    if not field:
        return node
    fields = [n.id[len(node) + 1 :] for n in graph.nodes.values() if _field_of(n, node)]
    return field_id(node, _known(field, fields, "field", f" in {node}"))


def _field_of(node: Node, product: str) -> bool:
    return node.level == "field" and node.product == product


def _known(name: str, candidates: list[str], what: str, where: str = "") -> str:
    """``name`` if among ``candidates``; else TerminalError suggesting the closest one."""
    if name in candidates:
        return name
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:
        fix = f"did you mean {close[0]!r}?"
    else:
        fix = f"use one of {', '.join(sorted(candidates))}" if candidates else "name a product"
    raise TerminalError(f"no {what} {name!r}{where}", fix=fix)


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``lineage`` on ``mesh``'s sub-commands; returns its parser."""
    sub = subparsers.add_parser("lineage", help=HELP, description=DESCRIPTION)
    add_arguments(sub)
    return sub


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """The arguments of ``mesh lineage`` (for a parser created elsewhere)."""
    sub.add_argument(
        "product", nargs="?", help="<domain>.<product> (optional when --field is a full name)"
    )
    way = sub.add_mutually_exclusive_group()
    way.add_argument("--upstream", action="store_true", help="only what it is derived from")
    way.add_argument("--downstream", action="store_true", help="only what is derived from it")
    sub.add_argument(
        "--field", metavar="F", help="a field of the product, or <domain>.<product>.<field>"
    )
    sub.add_argument("--format", choices=FORMATS, default="text", help="output (default text)")


def run(args: argparse.Namespace, products: Sequence[DataProduct]) -> int:
    """``mesh lineage``: print the lineage of one product or field; 1 (and why) when unknown."""
    graph = build(products)
    try:
        root = resolve(graph, args.product, args.field)
    except TerminalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    direction: Direction = (
        "upstream" if args.upstream else "downstream" if args.downstream else "both"
    )
    for note in _warnings_for(graph, selection(graph, root, direction)):
        print(f"warning: {note}", file=sys.stderr)
    print(RENDERERS[args.format](graph, root, direction))
    return 0


def _warnings_for(graph: LineageGraph, nodes: list[str]) -> list[str]:
    products = {graph.nodes[n].product for n in nodes}
    return [text for pid, text in sorted(graph.problems.items()) if pid in products]


def _label(node: Node) -> str:
    what = node.kind if node.level == "product" else f"{node.kind} field"
    return f"{node.id} ({what.replace('_', ' ')}) — owners: {', '.join(node.owners) or '-'}"


def text(graph: LineageGraph, root: str, direction: Direction) -> str:
    """An indented tree per direction, every node with its owners."""
    lines = [_label(graph.nodes[root])]
    for name, steps in (("upstream", graph.parents), ("downstream", graph.children)):
        if direction in (name, "both"):
            lines.append(f"{name}:")
            lines += _tree(graph, steps, root, 1, set()) or ["  (none)"]
    return "\n".join(lines)


def _tree(graph: LineageGraph, steps: Steps, node: str, depth: int, shown: set[str]) -> list[str]:
    lines: list[str] = []
    for nxt in steps[node]:
        again = nxt in shown
        shown.add(nxt)
        lines.append("  " * depth + _label(graph.nodes[nxt]) + (" (see above)" if again else ""))
        if not again:
            lines += _tree(graph, steps, nxt, depth + 1, shown)
    return lines


def to_json(graph: LineageGraph, root: str, direction: Direction) -> str:
    """``{root, direction, nodes, edges, warnings}`` of the selected part of the graph."""
    keep = selection(graph, root, direction)
    kept = set(keep)
    document = {
        "root": root,
        "direction": direction,
        "nodes": [asdict(graph.nodes[n]) for n in keep],
        "edges": [{"from": a, "to": b} for a, b in graph.edges if a in kept and b in kept],
        "warnings": _warnings_for(graph, keep),
    }
    return json.dumps(document, indent=2)


def to_dot(graph: LineageGraph, root: str, direction: Direction) -> str:
    """Graphviz ``digraph`` text of the selected part of the graph (owners in the labels)."""
    keep = selection(graph, root, direction)
    kept = set(keep)
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box];"]
    for n in keep:
        node = graph.nodes[n]
        label = f'"{_dot(node.id)}\\n{_dot(", ".join(node.owners))}"'
        shape = ", shape=cylinder" if node.kind == SOURCE_KIND else ""
        bold = ", style=bold" if n == root else ""
        lines.append(f'  "{_dot(n)}" [label={label}{shape}{bold}];')
    for a, b in graph.edges:
        if a in kept and b in kept:
            lines.append(f'  "{_dot(a)}" -> "{_dot(b)}";')
    return "\n".join([*lines, "}"])


def _dot(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


RENDERERS: dict[str, Callable[[LineageGraph, str, Direction], str]] = {
    "text": text,
    "json": to_json,
    "dot": to_dot,
}
