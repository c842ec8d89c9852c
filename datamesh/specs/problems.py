"""Pydantic validation errors as declaration problems: the field path, the problem and the fix.

Unknown keys get the closest known one (``unknown option `wher` ... did you mean `where`?``),
found by walking the declaration models along the error's location.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from datamesh.specs.processors import OPTIONS, TYPES_TEXT, did_you_mean

Loc = list[str | int]


def first_error(errors: Sequence[ErrorDetails]) -> ErrorDetails:
    """The error to report: a misspelt key before the "missing" error its typo causes."""
    missing = {(tuple(e["loc"][:-1]), str(e["loc"][-1])) for e in errors if e["type"] == "missing"}
    for e in errors:
        if e["type"] == "extra_forbidden":
            parent, name = tuple(e["loc"][:-1]), str(e["loc"][-1])
            if did_you_mean(name, [m for p, m in missing if p == parent]):
                return e
    return errors[0]


def problem_of(err: ErrorDetails, root: type[BaseModel]) -> tuple[Loc, str, str]:
    """``(location in the file, problem, fix)`` of one pydantic error under model ``root``."""
    raw = list(err["loc"])
    loc = _without_tags(raw)
    if err["type"] == "missing":
        return loc, err["msg"], f"add `{loc[-1]}:` here"
    if err["type"] == "extra_forbidden":
        return (loc, *_unknown_key(raw, root))
    if err["type"] == "processor_type":
        got = err["input"].get("type") if isinstance(err["input"], dict) else err["input"]
        return [*loc, "type"], f"unknown processor type {got!r}", f"use one of {TYPES_TEXT}"
    return loc, err["msg"], f"change the value (got {err.get('input')!r})"


def _without_tags(loc: Sequence[Any]) -> Loc:
    """Drop the discriminator tag pydantic puts after ``processor`` (``processor.filter.x``)."""
    out: Loc = []
    for i, part in enumerate(loc):
        if i and loc[i - 1] == "processor" and part in OPTIONS:
            continue
        out.append(part if isinstance(part, int) else str(part))
    return out


def _unknown_key(raw: Sequence[Any], root: type[BaseModel]) -> tuple[str, str]:
    name = str(raw[-1])
    model = _model_at(raw[:-1], root)
    known = [f.alias or n for n, f in model.model_fields.items()] if model else []
    close = did_you_mean(name, known)
    if model is not None and model in OPTIONS.values():
        kind = raw[-2]
        takes = ", ".join(k for k in known if k != "type") or "no options"
        problem = f"unknown option `{name}` of a {kind} processor (it takes {takes})"
        fix = f"did you mean `{close}`?" if close else f"remove `{name}`"
        return problem, fix
    fix = f"remove `{name}` or correct its spelling"
    return f"Extra inputs are not permitted: `{name}`", fix + (f": `{close}`?" if close else "")


def _model_at(loc: Sequence[Any], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model whose fields sit at ``loc`` (None when the walk leaves the models)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        if part in OPTIONS and model in OPTIONS.values():
            model = OPTIONS[part]
            continue
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        model = _model_in(field.annotation) if field else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
