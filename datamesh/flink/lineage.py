"""Field-level lineage of a processor's SQL: per output column, the input (product, column) pairs.

A pure function over the query text and the input products' columns — no planner, no network —
for Dagster's ``dagster/column_lineage``. It understands what processors are written with:
SELECT lists with aliases and expressions, joins, subqueries and CTEs, UNION, ``*`` / ``t.*``,
and window table functions (``TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))``, whose
``window_start``/``window_end``/``window_time`` derive from the descriptor column). Aggregates
such as ``COUNT(*)`` depend on no input column and get an empty list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Origin = tuple[str, str]  # (product id, column)
Lineage = dict[str, list[Origin]]

_TOKEN = re.compile(
    r"\s+|--[^\n]*|/\*.*?\*/|(?P<str>'(?:[^']|'')*')|(?P<qid>`(?:[^`]|``)*`)"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_$]*)|(?P<op><>|<=|>=|!=|\|\||.)",
    re.S,
)
_CLAUSE_END = {"FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "UNION",
               "INTERSECT", "EXCEPT", "QUALIFY"}  # fmt: skip
_JOIN_WORDS = {"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "LATERAL", "NATURAL"}
_NOT_COLUMNS = {
    "AS", "AND", "OR", "NOT", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN", "ELSE", "END",
    "IS", "IN", "LIKE", "BETWEEN", "DISTINCT", "INTERVAL", "SECOND", "MINUTE", "HOUR", "DAY",
    "MONTH", "YEAR", "CURRENT_TIMESTAMP", "CURRENT_DATE", "LOCALTIMESTAMP", "ALL", "ON",
    "FILTER", "OVER", "PARTITION", "BY", "ROWS", "RANGE", "UNBOUNDED", "PRECEDING", "FOLLOWING",
    "CURRENT", "ROW", "ASC", "DESC", "DESCRIPTOR", "TABLE", "SELECT", "FROM", "WHERE", "ESCAPE",
    "SIMILAR", "TO", "FOR", "SYSTEM_TIME", "OF",
}  # fmt: skip
WINDOW_COLUMNS = ("window_start", "window_end", "window_time")


@dataclass(frozen=True)
class _Tok:
    kind: str  # id | qid | str | num | op
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "id" else ""

    @property
    def name(self) -> str:
        return self.text[1:-1].replace("``", "`") if self.kind == "qid" else self.text


def column_lineage(
    sql: str,
    inputs: Mapping[str, Sequence[str]],
    output_columns: Sequence[str] | None = None,
) -> Lineage:
    """Per output column of ``sql``, the (product id, column) pairs it is computed from.

    ``inputs`` maps each input product id (the table name the SQL uses) to its columns;
    ``output_columns`` (the planner's result names, e.g. from validation) renames the result
    positionally when given.
    """
    tokens = _tokenize(sql)
    relations = {pid: _Relation({c: [(pid, c)] for c in cols}) for pid, cols in inputs.items()}
    columns = _Query(tokens, relations).parse()
    if output_columns is not None:
        origins = list(columns.values())
        return {name: origins[i] if i < len(origins) else [] for i, name in
                enumerate(output_columns)}  # fmt: skip
    return columns


@dataclass
class _Relation:
    """A table in scope: each of its columns with the origins it carries."""

    columns: dict[str, list[Origin]]


def _tokenize(sql: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind:
            out.append(_Tok(kind, m.group(kind)))
    return out


def _merge(*groups: Sequence[Origin]) -> list[Origin]:
    seen: list[Origin] = []
    for group in groups:
        for origin in group:
            if origin not in seen:
                seen.append(origin)
    return seen


class _Query:
    """Recursive-descent reader of one query over a token list."""

    def __init__(self, tokens: list[_Tok], tables: Mapping[str, _Relation]) -> None:
        self.t = tokens
        self.i = 0
        self.tables = dict(tables)

    def peek(self, ahead: int = 0) -> _Tok | None:
        j = self.i + ahead
        return self.t[j] if j < len(self.t) else None

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.upper in words

    def take(self) -> _Tok:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def parse(self) -> Lineage:
        if self.at("WITH"):
            self._ctes()
        result = self._select_or_group()
        while self.at("UNION", "INTERSECT", "EXCEPT"):
            self.take()
            if self.at("ALL", "DISTINCT"):
                self.take()
            other = self._select_or_group()
            result = {
                name: _merge(origins, list(other.values())[k] if k < len(other) else [])
                for k, (name, origins) in enumerate(result.items())
            }
        return result

    def _ctes(self) -> None:
        self.take()
        while True:
            name = self.take().name
            while not self.at("AS"):
                self.take()  # optional column list: WITH x (a, b) AS (...)
            self.take()
            body = self._group_tokens()
            self.tables[name] = _Relation(_Query(body, self.tables).parse())
            if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                continue
            return

    def _group_tokens(self) -> list[_Tok]:
        """The tokens inside the parentheses that start here (consumed)."""
        assert self.take().text == "("
        depth, start = 1, self.i
        while depth:
            tok = self.take()
            depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
        return self.t[start : self.i - 1]

    def _select_or_group(self) -> Lineage:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            return _Query(self._group_tokens(), self.tables).parse()
        assert self.at("SELECT"), f"expected SELECT, found {tok.text if tok else 'end'}"
        self.take()
        if self.at("DISTINCT", "ALL"):
            self.take()
        items = self._items()
        scope: dict[str, _Relation] = {}
        if self.at("FROM"):
            self.take()
            scope = self._from()
        self._skip_to_set_operator()
        return self._project(items, scope)

    def _items(self) -> list[list[_Tok]]:
        items: list[list[_Tok]] = [[]]
        depth = 0
        while self.peek() is not None and not (depth == 0 and self.at(*_CLAUSE_END)):
            tok = self.take()
            if tok.kind == "op" and tok.text in "()":
                depth += 1 if tok.text == "(" else -1
            if depth == 0 and tok.text == ",":
                items.append([])
            else:
                items[-1].append(tok)
        return [item for item in items if item]

    def _from(self) -> dict[str, _Relation]:
        scope: dict[str, _Relation] = {}
        while self.peek() is not None and not self.at(*(_CLAUSE_END - {"FROM"})):
            tok = self.peek()
            assert tok is not None
            if tok.text == "," or tok.upper in _JOIN_WORDS:
                self.take()
            elif tok.upper == "ON":
                self._skip_condition()
            elif tok.text == ")":
                break
            else:
                alias, relation = self._relation()
                scope[alias] = relation
        return scope

    def _relation(self) -> tuple[str, _Relation]:
        tok = self.peek()
        assert tok is not None
        if tok.upper == "TABLE":
            self.take()
            relation, default = self._window_function(self._group_tokens())
        elif tok.text == "(":
            relation, default = _Relation(_Query(self._group_tokens(), self.tables).parse()), ""
        else:
            name = self._dotted()
            relation = self.tables.get(name, _Relation({}))
            default = name
        return self._alias(default), relation

    def _dotted(self) -> str:
        parts = [self.take().name]
        while self.peek() is not None and self.peek().text == ".":  # type: ignore[union-attr]
            self.take()
            parts.append(self.take().name)
        return ".".join(parts)

    def _alias(self, default: str) -> str:
        if self.at("AS"):
            self.take()
        tok = self.peek()
        if (
            tok is not None
            and tok.kind in ("id", "qid")
            and (tok.kind == "qid" or tok.upper not in _CLAUSE_END | _JOIN_WORDS | {"ON"})
        ):
            return self.take().name
        return default

    def _window_function(self, body: list[_Tok]) -> tuple[_Relation, str]:
        """``TUMBLE(TABLE t, DESCRIPTOR(ts), ...)``: t's columns plus the window columns."""
        inner = _Query(body, self.tables)
        name, time_origins = "", []
        while inner.peek() is not None:
            tok = inner.take()
            if tok.upper == "TABLE" and not name:
                name = inner._dotted()
            elif tok.upper == "DESCRIPTOR":
                column = inner._group_tokens()[0].name
                time_origins = self.tables.get(name, _Relation({})).columns.get(column, [])
        base = self.tables.get(name, _Relation({}))
        columns = {**base.columns, **{w: list(time_origins) for w in WINDOW_COLUMNS}}
        return _Relation(columns), name

    def _skip_condition(self) -> None:
        depth = 0
        while self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                if depth == 0:
                    return
                depth -= 1
            elif depth == 0 and (tok.text == "," or tok.upper in _JOIN_WORDS | _CLAUSE_END):
                return
            self.take()

    def _skip_to_set_operator(self) -> None:
        depth = 0
        while self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            if depth == 0 and (tok.upper in ("UNION", "INTERSECT", "EXCEPT") or tok.text == ")"):
                return
            depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
            self.take()

    def _project(self, items: list[list[_Tok]], scope: Mapping[str, _Relation]) -> Lineage:
        out: Lineage = {}
        for n, item in enumerate(items):
            star = _star(item)
            if star is not None:
                for alias, relation in scope.items():
                    if star in ("", alias):
                        out.update({c: list(o) for c, o in relation.columns.items()})
                continue
            expression, name = _split_alias(item)
            out[name or _default_name(expression, n)] = _origins(expression, scope)
        return out


def _star(item: list[_Tok]) -> str | None:
    """'' for ``*``, the qualifier for ``t.*``, None otherwise."""
    if len(item) == 1 and item[0].text == "*":
        return ""
    if len(item) == 3 and item[1].text == "." and item[2].text == "*":
        return item[0].name
    return None


def _split_alias(item: list[_Tok]) -> tuple[list[_Tok], str | None]:
    if len(item) >= 3 and item[-2].upper == "AS":
        return item[:-2], item[-1].name
    last, before = item[-1], item[-2] if len(item) >= 2 else None
    implicit = (
        before is not None
        and last.kind in ("id", "qid")
        and last.upper not in _NOT_COLUMNS
        and before.text != "."
        and (before.kind != "op" or before.text == ")")
    )
    return (item[:-1], last.name) if implicit else (item, None)


def _default_name(expression: list[_Tok], n: int) -> str:
    if expression and expression[-1].kind in ("id", "qid") and len(expression) in (1, 3):
        return expression[-1].name
    return f"EXPR${n}"


def _origins(expression: list[_Tok], scope: Mapping[str, _Relation]) -> list[Origin]:
    found: list[Origin] = []
    k = 0
    while k < len(expression):
        tok = expression[k]
        after = expression[k + 1] if k + 1 < len(expression) else None
        before = expression[k - 1] if k else None
        if tok.kind not in ("id", "qid") or (tok.kind == "id" and tok.upper in _NOT_COLUMNS):
            k += 1
            continue
        if (after is not None and after.text == "(") or (
            before is not None and before.upper == "AS"
        ):
            k += 1  # a function name, or the type of CAST(x AS type)
            continue
        if after is not None and after.text == "." and k + 2 < len(expression):
            relation = scope.get(tok.name)
            column = expression[k + 2].name
            found = _merge(found, relation.columns.get(column, []) if relation else [])
            k += 3
            continue
        for relation in scope.values():
            if tok.name in relation.columns:
                found = _merge(found, relation.columns[tok.name])
                break
        k += 1
    return found
