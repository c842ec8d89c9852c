"""Field-level lineage of a processor's SQL: per output column, the input (product, column) pairs.

A pure function over the query text and the input products' columns — no planner, no network —
for Dagster's ``dagster/column_lineage``. sqlglot parses the query and qualifies it against the
inputs (expanding ``*`` / ``t.*``, resolving aliases, scoping joins, subqueries, CTEs and set
operations); each output column then depends on every input column its expression reads, in the
order they appear, through as many derived tables as there are (a UNION's columns on those of
every branch, by position). Aggregates such as ``COUNT(*)`` and literals read none: empty list.

Flink's window table functions (``TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))``, also ``HOP``,
``CUMULATE``, ``SESSION``) parse in no sqlglot dialect: they are read as the derived table
``(SELECT *, ts AS window_start, ts AS window_end, ts AS window_time FROM t)``, which has the
same columns and the same lineage. A query whose lineage cannot be derived (it does not parse,
reads a table that is not an input, names a column no input has, or one several have) raises
:class:`LineageError` with the 1-based line of the query when known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import takewhile

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.tokenizer_core import Token, TokenType

from datamesh.errors import TerminalError

Origin = tuple[str, str]  # (product id, column)
Lineage = dict[str, list[Origin]]
WINDOW_COLUMNS = ("window_start", "window_end", "window_time")
# Flink SQL (Calcite) quotes identifiers with backticks and keeps their case; Spark's dialect is
# the closest sqlglot has (backticks, `||`, CAST(... AS STRING)) once it stops folding case.
_DIALECT = "spark, normalization_strategy=case_sensitive"
_WINDOW_FUNCTIONS = {"TUMBLE", "HOP", "CUMULATE", "SESSION"}
_NAME_TOKENS = {TokenType.IDENTIFIER, TokenType.VAR, TokenType.DOT}
_OPEN, _CLOSE = TokenType.L_PAREN, TokenType.R_PAREN


class LineageError(TerminalError):
    """The column lineage of a query cannot be derived; ``line`` is 1-based in the query."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        self.problem = problem
        self.line = line
        where = f"line {line}: " if line else ""
        super().__init__(
            f"{where}{problem}",
            fix="correct the query (product ids in backticks: `domain.product`) or declare the "
            "input it reads",
        )


def column_lineage(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    output_columns: Sequence[str] | None = None,
) -> Lineage:
    """Per output column of ``sql``, the (product id, column) pairs it is computed from.

    ``inputs`` maps each input product id (the table name the SQL uses) to its columns;
    ``output_columns`` (the planner's result names, e.g. from validation) renames the result
    positionally when given; otherwise an unnamed expression is ``EXPR$<position>`` as in Flink.
    Raises :class:`LineageError` when the lineage cannot be derived.
    """
    root = _qualified_scope(sql, inputs)
    query = _query(root)
    origins = [_select_origins(root, i, inputs) for i in range(len(query.selects))]
    names = output_columns if output_columns is not None else query.named_selects
    return {name: origins[i] if i < len(origins) else [] for i, name in enumerate(names)}


def columns_read(sql: str, inputs: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Per input product id, every column of it ``sql`` reads anywhere — selected, filtered on
    (``WHERE``, ``HAVING``), joined on, grouped or ordered by — in input column order.

    What a query *uses* of its inputs, which is more than what its output derives from: a
    column only filtered on appears in no output column's lineage. ``*`` counts as reading
    every column, also inside a derived table (and a window table function, read as one): an
    over-approximation, so a change is never missed. Raises :class:`LineageError` like
    :func:`column_lineage`.
    """
    root = _qualified_scope(sql, inputs)
    used: dict[str, set[str]] = {pid: set() for pid in inputs}
    for scope in root.traverse():
        for column in scope.columns:
            source = _source(scope, column.table)
            if isinstance(source, exp.Table):
                if column.name not in inputs[source.name]:
                    problem = f"{column.table!r} has no column {column.name!r}"
                    raise LineageError(problem, _line(column))
                used[source.name].add(column.name)
            elif source is None:
                problem = f"column {column.name!r} is in no input, or in several (qualify it)"
                raise LineageError(problem, _line(column))
    return {pid: tuple(c for c in inputs[pid] if c in used[pid]) for pid in inputs}


def _qualified_scope(sql: str, inputs: Mapping[str, Sequence[str]]) -> Scope:
    """The root scope of ``sql`` with every column qualified by its source and ``*`` expanded."""
    # Types play no part in lineage; the schema only lists each input's columns.
    schema: dict[str, object] = {
        f"`{pid}`": dict.fromkeys(columns, "STRING") for pid, columns in inputs.items()
    }
    try:
        tree = sqlglot.parse_one(_window_tables(sql), read=_DIALECT)
        if not isinstance(tree, exp.Query):
            raise LineageError(f"not a query: {tree.key.upper()} (a processor is a SELECT)")
        for position, item in enumerate(tree.selects):
            if not isinstance(item, exp.Alias | exp.Column | exp.Star):
                item.replace(exp.alias_(item.copy(), f"EXPR${position}"))
        # Unresolved columns are left for _column_origins, which names them with their line.
        qualified = qualify(
            tree,
            dialect=_DIALECT,
            schema=schema,
            validate_qualify_columns=False,
            allow_partial_qualification=True,
            identify=False,
        )
        root = build_scope(qualified)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise LineageError(first.get("description", str(exc)), first.get("line")) from exc
    except SqlglotError as exc:
        raise LineageError(str(exc).splitlines()[0]) from exc
    assert root is not None  # a query always has a scope
    _check_tables(root, inputs)
    return root


def _check_tables(root: Scope, inputs: Mapping[str, Sequence[str]]) -> None:
    """Every table the query reads (CTEs aside) is an input, named by its product id."""
    for scope in root.traverse():
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and (source.name not in inputs or source.db):
                name = ".".join(part.name for part in source.parts)
                raise LineageError(f"reads {name!r}, which is not an input", _line(source))


def _select_origins(
    scope: Scope, position: int, inputs: Mapping[str, Sequence[str]]
) -> list[Origin]:
    """What the output column at ``position`` of ``scope``'s query reads."""
    query = _query(scope)
    if isinstance(query, exp.SetOperation):  # UNION etc.: every branch, by position
        return _merge(*(_select_origins(s, position, inputs) for s in scope.set_operation_scopes))
    if position >= len(query.selects):
        raise LineageError("the queries of a UNION have different numbers of columns")
    item = query.selects[position]
    if item.is_star:
        raise LineageError(f"cannot expand {item.sql(_DIALECT)}: its table is not an input")
    return _expression_origins(scope, item, inputs)


def _expression_origins(
    scope: Scope, expression: exp.Expr, inputs: Mapping[str, Sequence[str]]
) -> list[Origin]:
    """The input columns ``expression`` reads, in order (scalar subqueries included)."""
    subqueries = {id(s.expression): s for s in scope.subquery_scopes}
    found: list[Origin] = []
    for node in expression.walk(
        bfs=False, prune=lambda n: n is not expression and isinstance(n, exp.Query)
    ):
        if isinstance(node, exp.Column):
            found = _merge(found, _column_origins(scope, node, inputs))
        elif isinstance(node, exp.Query) and id(node.unnest()) in subqueries:
            inner = subqueries[id(node.unnest())]
            found = _merge(
                found, *(_select_origins(inner, i, inputs) for i in range(len(node.selects)))
            )
    return found


def _column_origins(
    scope: Scope, column: exp.Column, inputs: Mapping[str, Sequence[str]]
) -> list[Origin]:
    source = _source(scope, column.table)
    if isinstance(source, Scope) and source.is_udtf:  # UNNEST(...) AS t(x): what it unnests
        return _expression_origins(scope, source.expression, inputs)
    if isinstance(source, Scope):  # a derived table, CTE or window function: follow it
        names = _query(source).named_selects
        if column.name in names:
            return _select_origins(source, names.index(column.name), inputs)
    elif isinstance(source, exp.Table) and column.name in inputs[source.name]:
        return [(source.name, column.name)]
    if source is None:
        problem = f"column {column.name!r} is in no input, or in several (qualify it)"
    else:
        problem = f"{column.table!r} has no column {column.name!r}"
    raise LineageError(problem, _line(column))


def _query(scope: Scope) -> exp.Query:
    """The query of a scope that is not a UDTF's (those are followed through their arguments)."""
    assert isinstance(scope.expression, exp.Query), scope.expression
    return scope.expression


def _source(scope: Scope, table: str) -> Scope | exp.Table | None:
    """The source ``table`` names in ``scope`` or, for a correlated subquery, an outer one."""
    current: Scope | None = scope
    while current is not None:
        found = current.sources.get(table) if table else None
        if isinstance(found, Scope | exp.Table):
            return found
        current = current.parent
    return None


def _window_tables(sql: str) -> str:
    """``sql`` with each window table function written as the derived table it amounts to.

    The line count stays the same, so that a parse error still points at the user's line.
    """
    tokens = sqlglot.Dialect.get_or_raise(_DIALECT).tokenize(sql)
    out, done = [], 0
    for i, token in enumerate(tokens):
        if token.start < done or not _is_window_call(tokens, i):
            continue
        end = _closing(tokens, i + 1)
        table = _name_after(sql, tokens[i + 4 : end], "TABLE")
        time = _name_after(sql, tokens[i + 4 : end], "DESCRIPTOR")
        columns = ", ".join(f"{time} AS {column}" for column in WINDOW_COLUMNS)
        out += [sql[done : token.start], f"(SELECT *, {columns} FROM {table})"]
        out.append("\n" * sql.count("\n", token.start, tokens[end].end))
        done = tokens[end].end + 1
    return "".join(out) + sql[done:]


def _is_window_call(tokens: list[Token], i: int) -> bool:
    """``TABLE ( TUMBLE (`` (or another window function) starts at ``tokens[i]``."""
    shape = tokens[i : i + 4]
    return (
        len(shape) == 4
        and [t.token_type for t in shape] == [TokenType.TABLE, _OPEN, TokenType.VAR, _OPEN]
        and shape[2].text.upper() in _WINDOW_FUNCTIONS
    )


def _closing(tokens: list[Token], opening: int) -> int:
    """The index of the parenthesis that closes ``tokens[opening]``."""
    depth = 0
    for j in range(opening, len(tokens)):
        depth += {_OPEN: 1, _CLOSE: -1}.get(tokens[j].token_type, 0)
        if depth == 0:
            return j
    raise LineageError("unbalanced parentheses", tokens[opening].line)


def _name_after(sql: str, tokens: list[Token], keyword: str) -> str:
    """The (dotted) name after ``keyword`` (``TABLE t``, ``DESCRIPTOR(ts)``), as in ``sql``."""
    for j, token in enumerate(tokens):
        if token.text.upper() == keyword and token.token_type != TokenType.STRING:
            rest = tokens[j + 1 :]
            rest = rest[1:] if rest and rest[0].token_type == _OPEN else rest
            name = list(takewhile(lambda t: t.token_type in _NAME_TOKENS, rest))
            if name:
                return sql[name[0].start : name[-1].end + 1]
    line = tokens[0].line if tokens else None
    raise LineageError(f"a window function needs {keyword} <name>", line)


def _merge(*groups: Sequence[Origin]) -> list[Origin]:
    """The origins of every group, each once, in order."""
    return list(dict.fromkeys(origin for group in groups for origin in group))


def _line(node: exp.Expr) -> int | None:
    """The 1-based line ``node`` was parsed from (None when the optimizer made it)."""
    meta = node.this.meta if isinstance(node.this, exp.Identifier) else node.meta
    line = meta.get("line")
    return line if isinstance(line, int) else None
