"""SQL of the typed processors a declaration may use instead of a hand-written ``.sql`` file.

The ``products.yaml`` shape (``processor.type`` picks one; input ids as in ``inputs:``); the
options, the number of inputs and the columns they name are checked when declarations load
(:mod:`datamesh.specs.processors`, :mod:`datamesh.specs.processor_rules`)::

    processor: {type: filter, where: "amount >= 100"}
    processor: {type: projection, columns: [id, "amount * 2 AS doubled"], where: "..."}
    processor: {type: rename, columns: {title: movie_title}}          # others kept as they are
    processor: {type: union}                                          # all inputs, same columns
    processor: {type: join, how: left, on: "p.movie_id = m.id",
                select: ["m.id AS movie_id", "m.title", "p.stage"]}   # aliases: inputs' names
    processor: {type: window, time: updated_at, size: 1m, delay: 5s,
                group_by: [status], aggregates: {movies: "COUNT(*)"}}
    processor: {type: sql}                                            # the product's `sql:` file

The generated text goes through the same validation, lineage and deployment as a ``.sql`` file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datamesh.flink.types import Watermark, quote
from datamesh.specs.durations import parse_duration

TYPES = ("filter", "projection", "rename", "union", "join", "window", "sql")


class TemplateError(ValueError):
    """A typed processor declaration that cannot be turned into SQL."""


def processor_sql(spec: Mapping[str, Any], inputs: Mapping[str, Sequence[str]]) -> str:
    """The query of a typed processor over ``inputs`` (product id → its columns, in order)."""
    kind = spec.get("type")
    ids = list(inputs)
    if kind not in TYPES or kind == "sql":
        raise TemplateError(f"processor.type must be one of {TYPES[:-1]} here, got {kind!r}")
    if kind != "union" and kind != "join" and len(ids) != 1:
        raise TemplateError(f"a {kind} processor reads exactly one input, got {ids}")
    if kind == "filter":
        return f"SELECT *\nFROM {quote(ids[0])}\nWHERE {_required(spec, 'where')}"
    if kind == "projection":
        columns = ", ".join(_required(spec, "columns"))
        return f"SELECT {columns}\nFROM {quote(ids[0])}" + _where(spec)
    if kind == "rename":
        mapping: Mapping[str, str] = _required(spec, "columns")
        unknown = sorted(set(mapping) - set(inputs[ids[0]]))
        if unknown:
            raise TemplateError(f"rename of unknown column(s) {unknown} of {ids[0]}")
        items = [
            f"{quote(c)} AS {quote(mapping[c])}" if c in mapping else quote(c)
            for c in inputs[ids[0]]
        ]
        return f"SELECT {', '.join(items)}\nFROM {quote(ids[0])}" + _where(spec)
    if kind == "union":
        return "\nUNION ALL\n".join(f"SELECT * FROM {quote(i)}" for i in ids)
    if kind == "join":
        return _join(spec, ids)
    return _window(spec, ids[0])


def watermarks(spec: Mapping[str, Any], inputs: Sequence[str]) -> dict[str, Watermark]:
    """Event-time watermarks a typed processor needs (window processors only)."""
    if spec.get("type") != "window":
        return {}
    delay = parse_duration(str(spec.get("delay", "5s")))
    return {inputs[0]: Watermark(_required(spec, "time"), int(delay.total_seconds() * 1000))}


def _join(spec: Mapping[str, Any], ids: list[str]) -> str:
    if len(ids) != 2:
        raise TemplateError(f"a join processor reads exactly two inputs, got {ids}")
    how = str(spec.get("how", "inner")).upper()
    if how not in ("INNER", "LEFT"):
        raise TemplateError(f"join how must be inner or left, got {how.lower()!r}")
    aliases = [spec.get("left_alias") or _alias(ids[0]), spec.get("right_alias") or _alias(ids[1])]
    select = ", ".join(_required(spec, "select"))
    return (
        f"SELECT {select}\nFROM {quote(ids[0])} AS {aliases[0]}\n"
        f"{how} JOIN {quote(ids[1])} AS {aliases[1]} ON {_required(spec, 'on')}" + _where(spec)
    )


def _window(spec: Mapping[str, Any], source: str) -> str:
    size = parse_duration(str(_required(spec, "size")))
    seconds = int(size.total_seconds())
    group = [str(g) for g in spec.get("group_by", [])]
    aggregates: Mapping[str, str] = _required(spec, "aggregates")
    items = ["window_start", "window_end", *group]
    items += [f"{expr} AS {quote(name)}" for name, expr in aggregates.items()]
    keys = ", ".join(["window_start", "window_end", *group])
    return (
        f"SELECT {', '.join(items)}\nFROM TABLE(TUMBLE(TABLE {quote(source)}, "
        f"DESCRIPTOR({quote(_required(spec, 'time'))}), INTERVAL '{seconds}' SECOND))"
        + _where(spec)
        + f"\nGROUP BY {keys}"
    )


def _alias(product_id: str) -> str:
    return product_id.split(".", 1)[1]


def _where(spec: Mapping[str, Any]) -> str:
    return f"\nWHERE {spec['where']}" if spec.get("where") else ""


def _required(spec: Mapping[str, Any], field: str) -> Any:
    if not spec.get(field):
        raise TemplateError(f"a {spec.get('type')} processor needs `{field}:`")
    return spec[field]
