"""Rules of typed processors that need their inputs: how many, and the columns they name.

``filter``, ``projection``, ``rename`` and ``window`` read exactly one input, ``join`` exactly two
and ``union`` two or more with the same columns; columns an option names must exist in the
input's declared schema (inputs without one are not checked).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from datamesh.specs.processors import (
    SINGLE_INPUT,
    JoinOptions,
    RenameOptions,
    UnionOptions,
    WindowOptions,
    did_you_mean,
    options_of,
)

if TYPE_CHECKING:
    from datamesh.errors import SpecError
    from datamesh.specs.product import DataProduct

Fail = Callable[[list[str | int], str, str], "SpecError"]


def check_processor(p: DataProduct, by_id: Mapping[str, DataProduct], fail: Fail) -> None:
    """Raise (through ``fail(loc, problem, fix)``) the first broken rule of ``p.processor``."""
    if p.processor is None:
        return
    if p.kind != "processor":
        raise fail(
            ["processor"], f"only processors take `processor:`, this is {p.kind}", "remove it"
        )
    options = options_of(p.processor)
    kind = options.model_dump()["type"]
    if kind != "sql" and p.sql is not None:
        raise fail(
            ["sql"],
            f"a {kind} processor generates its query, so `sql:` would be ignored",
            "remove `sql:`, or remove `processor:` to run the SQL file",
        )
    _check_arity(kind, p.inputs, fail)
    columns = {ref: by_id[ref].field_names() for ref in p.inputs}
    if isinstance(options, UnionOptions):
        _check_union(p.inputs, columns, fail)
    elif isinstance(options, RenameOptions):
        for old in options.columns:
            _check_column(p.inputs[0], columns, old, ["processor", "columns", old], fail)
    elif isinstance(options, WindowOptions):
        _check_column(p.inputs[0], columns, options.time, ["processor", "time"], fail)
        for j, name in enumerate(options.group_by):
            _check_column(p.inputs[0], columns, name, ["processor", "group_by", j], fail)
    elif isinstance(options, JoinOptions):
        _check_join(options, p.inputs, columns, fail)


def _check_arity(kind: str, inputs: Sequence[str], fail: Fail) -> None:
    n = len(inputs)
    if kind in SINGLE_INPUT and n != 1:
        raise fail(
            ["inputs"],
            f"a {kind} processor reads exactly one input, found {n}",
            "list one input, or combine several with `type: union` or `type: join`",
        )
    if kind == "join" and n != 2:
        raise fail(["inputs"], f"a join reads exactly two inputs, found {n}", "list two inputs")
    if kind == "union" and n < 2:
        raise fail(
            ["inputs"],
            f"a union combines two or more inputs, found {n}",
            "add the inputs to combine, or use `type: filter`/`projection` on one",
        )


def _check_union(inputs: Sequence[str], columns: Mapping[str, tuple[str, ...]], fail: Fail) -> None:
    first = columns[inputs[0]]
    for j, ref in enumerate(inputs[1:], start=1):
        if first and columns[ref] and columns[ref] != first:
            raise fail(
                ["inputs", j],
                f"{ref} has columns ({', '.join(columns[ref])}) but {inputs[0]} has "
                f"({', '.join(first)}); a union pairs columns by position",
                "give the inputs the same columns in the same order (a projection first), "
                "or write the query in `sql:`",
            )


def _check_column(
    ref: str,
    columns: Mapping[str, tuple[str, ...]],
    name: str,
    loc: list[str | int],
    fail: Fail,
) -> None:
    known = columns[ref]
    if known and name not in known:
        close = did_you_mean(name, known)
        fix = f"did you mean `{close}`?" if close else f"use one of {', '.join(known)}"
        raise fail(loc, f"{ref} has no column {name!r}", fix)


def _check_join(
    options: JoinOptions, inputs: Sequence[str], columns: Mapping[str, tuple[str, ...]], fail: Fail
) -> None:
    aliases = {
        options.left_alias or inputs[0].split(".", 1)[1]: inputs[0],
        options.right_alias or inputs[1].split(".", 1)[1]: inputs[1],
    }
    try:
        condition = sqlglot.parse_one(options.on)
    except sqlglot.errors.ParseError as exc:
        raise fail(
            ["processor", "on"],
            f"`on` is not a SQL condition: {str(exc).splitlines()[0]}",
            'write a condition over the inputs\' aliases, e.g. on: "p.movie_id = m.id"',
        ) from None
    for column in condition.find_all(exp.Column):
        _check_join_column(column, aliases, columns, fail)


def _check_join_column(
    column: exp.Column,
    aliases: Mapping[str, str],
    columns: Mapping[str, tuple[str, ...]],
    fail: Fail,
) -> None:
    loc: list[str | int] = ["processor", "on"]
    if column.table:
        ref = aliases.get(column.table)
        if ref is None:
            named = " and ".join(f"{a} ({r})" for a, r in aliases.items())
            raise fail(
                loc,
                f"`on` refers to {column.table}.{column.name} but the inputs are {named}",
                "qualify columns with those aliases, or set `left_alias`/`right_alias`",
            )
        _check_column(ref, columns, column.name, loc, fail)
        return
    known = [name for ref in aliases.values() for name in columns[ref]]
    if all(columns[ref] for ref in aliases.values()) and column.name not in known:
        close = did_you_mean(column.name, known)
        fix = f"did you mean `{close}`?" if close else "qualify it: <alias>.<column>"
        raise fail(loc, f"`on` names column {column.name!r}, which neither input has", fix)
