"""``mesh catalog search <words...> [--json] [--limit N]`` and ``mesh catalog show <product>``.

``add_parser(subparsers)`` registers the command; ``run(args, products)`` prints text tables
or JSON and returns the exit code: 0, or 1 (message on stderr) for an unknown product.
A search without results prints that and exits 0. The index and schema code is imported on
``run`` only, so building ``mesh``'s parser stays cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datamesh.catalog.card import Card
    from datamesh.catalog.health import HealthLookup
    from datamesh.catalog.ranking import Result
    from datamesh.specs.product import DataProduct

HELP = "`mesh catalog search <words> | show <product>`: find and describe data products"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``catalog`` (with its ``search`` and ``show`` actions) on ``mesh``'s commands."""
    add_arguments(subparsers.add_parser("catalog", help=HELP))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``search`` and ``show`` actions to an existing ``catalog`` parser."""
    actions = parser.add_subparsers(dest="action", required=True)
    search = actions.add_parser("search", help="products ranked by how well they match")
    search.add_argument("words", nargs="+", help="words to look for (case-insensitive)")
    search.add_argument("--limit", type=_positive, default=10, help="at most this many results")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="the full card of one product")
    show.add_argument("product", help="<domain>.<product> or <product>")
    show.add_argument("--json", action="store_true", help="machine-readable output")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def run(
    args: argparse.Namespace,
    products: Sequence[DataProduct],
    health: HealthLookup | None = None,
) -> int:
    """Run ``args.action`` (``search`` or ``show``) over ``products``; the exit code.

    ``health`` looks up the shown products' last check results (the CLI passes the Dagster
    layer's :func:`mesh_assets.cli_entry.catalog_health`); without it every one is unknown.
    """
    from datamesh.catalog.health import unknown

    if args.action == "search":
        return _search(" ".join(args.words), args.limit, args.json, products, health or unknown)
    return _show(args.product, args.json, products, health or unknown)


def _search(
    query: str, limit: int, as_json: bool, products: Sequence[DataProduct], health: HealthLookup
) -> int:
    from datamesh.catalog.ranking import index, search

    results = search(index(products), query, limit)
    found = {p.id: p for p in products}
    states = health([found[r.id] for r in results])
    results = [dataclasses.replace(r, health=states[r.id]) for r in results]
    if as_json:
        print(json.dumps({"query": query, "results": [r.to_json() for r in results]}, indent=2))
    elif results:
        print(_table([_HEADER, *(_row(r) for r in results)]))
    else:
        print(f"no product matches {query!r}")
    return 0


_HEADER = [
    "PRODUCT",
    "KIND",
    "ACCESS",
    "TIER",
    "OWNERS",
    "TOPIC/TABLE",
    "FRESHNESS",
    "HEALTH",
    "MATCHED",
]


def _row(r: Result) -> list[str]:
    from datamesh.catalog.facts import duration

    where = f"topic {r.topic}" if r.topic else f"table {r.table}" if r.table else "-"
    return [
        r.id,
        r.kind,
        r.access,
        str(r.tier),
        ", ".join(r.owners),
        where,
        duration(r.freshness) or "-",
        r.health,
        ", ".join(r.matched),
    ]


def _table(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; the last one is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    cells = ([c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)] for row in rows)
    lines = ("  ".join([*padded, row[-1]]) for padded, row in zip(cells, rows, strict=True))
    return "\n".join(line.rstrip() for line in lines)


def _show(name: str, as_json: bool, products: Sequence[DataProduct], health: HealthLookup) -> int:
    from datamesh.catalog.card import card, find, suggestions

    product = find(name, products)
    if product is None:
        close = suggestions(name, products)
        fix = f"did you mean {' or '.join(map(repr, close))}?" if close else "see `mesh validate`"
        print(f"error: no product {name!r} — fix: {fix}", file=sys.stderr)
        return 1
    found = dataclasses.replace(card(product, products), health=health([product])[product.id])
    print(json.dumps(found.to_json(), indent=2) if as_json else _card_text(found))
    return 0


def _input(c: Card, product_id: str) -> str:
    used = c.consumes.get(product_id)
    return f"{product_id} ({', '.join(used)})" if used else product_id


def _access(c: Card) -> str:
    """``internal (also read by content, search)``: who besides its own domain may read it."""
    return f"{c.access} (also read by {', '.join(c.allow)})" if c.allow else c.access


def _card_text(c: Card) -> str:
    facts = [
        ("kind", c.kind),
        ("domain", c.domain),
        ("owners", ", ".join(c.owners)),
        ("access", _access(c)),
        ("tier", str(c.tier)),
        ("key", ", ".join(c.key)),
        ("topic", f"{c.topic} (subject {c.schema_subject})" if c.topic else ""),
        ("table", c.table or ""),
        ("inputs", ", ".join(_input(c, i) for i in c.inputs)),
        ("outputs", ", ".join(c.outputs)),
        ("freshness", c.freshness or ""),
        ("max lag", "" if c.max_lag is None else f"{c.max_lag} messages"),
        ("tags", ", ".join(f"{k}={v}" for k, v in c.tags.items())),
        ("health", f"{c.health} (last SLO check results)"),
        ("declared in", c.declared_in),
    ]
    lines = [f"{c.id} — {c.description}", ""]
    lines += [f"{label:12} {value or '-'}" for label, value in facts]
    fields = [["NAME", "TYPE", "NULLABLE", "DOC"]]
    fields += [[f.name, f.type, "yes" if f.nullable else "", f.doc] for f in c.fields]
    body = _table(fields) if c.fields else "(no schema)"
    return "\n".join([*lines, "", "fields", *("  " + line for line in body.splitlines())])
