"""Options of the typed processors (``processor: {type: filter, where: ...}``), one strict model
per type; the SQL they become is in :mod:`datamesh.flink.templates`.

Each model forbids unknown options, so ``{type: filter, wher: ...}`` fails at load naming the
option and the closest known one. Rules that need the inputs (how many, which columns) are in
:mod:`datamesh.specs.processor_rules`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from datamesh.specs.durations import parse_duration

ProcessorType = Literal["filter", "projection", "rename", "union", "join", "window", "sql"]
SINGLE_INPUT: frozenset[str] = frozenset({"filter", "projection", "rename", "window"})
_ALIAS = r"^[a-z_][a-z0-9_]*$"


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FilterOptions(_Options):
    """Rows of the one input for which ``where`` holds."""

    type: Literal["filter"]
    where: str = Field(min_length=1)


class ProjectionOptions(_Options):
    """``columns`` (names or ``expr AS name``) of the one input, optionally ``where``."""

    type: Literal["projection"]
    columns: list[str] = Field(min_length=1)
    where: str | None = None


class RenameOptions(_Options):
    """Every column of the one input, those in ``columns`` (old: new) renamed."""

    type: Literal["rename"]
    columns: dict[str, str] = Field(min_length=1)
    where: str | None = None


class UnionOptions(_Options):
    """All rows of two or more inputs with the same columns (``UNION ALL``)."""

    type: Literal["union"]


class JoinOptions(_Options):
    """Two inputs joined ``on`` a condition; aliases default to the inputs' product names."""

    type: Literal["join"]
    on: str = Field(min_length=1)
    select: list[str] = Field(min_length=1)
    how: Literal["inner", "left"] = "inner"
    left_alias: str | None = Field(default=None, pattern=_ALIAS)
    right_alias: str | None = Field(default=None, pattern=_ALIAS)
    where: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads an unquoted `on:` key as the boolean true.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class WindowOptions(_Options):
    """Tumbling windows of ``size`` over event time ``time`` (late by at most ``delay``)."""

    type: Literal["window"]
    time: str = Field(min_length=1)
    size: str
    delay: str | None = None
    group_by: list[str] = Field(default_factory=list)
    aggregates: dict[str, str] = Field(min_length=1)
    where: str | None = None

    @field_validator("size", "delay")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class SqlOptions(_Options):
    """The product's own ``sql:`` file (the default when ``type`` is left out)."""

    type: Literal["sql"] = "sql"


OPTIONS: dict[str, type[_Options]] = {
    "filter": FilterOptions,
    "projection": ProjectionOptions,
    "rename": RenameOptions,
    "union": UnionOptions,
    "join": JoinOptions,
    "window": WindowOptions,
    "sql": SqlOptions,
}
TYPES_TEXT = ", ".join(OPTIONS)


def _type_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("type", "sql"))
    return str(getattr(value, "type", "sql"))


ProcessorDecl = Annotated[
    Annotated[FilterOptions, Tag("filter")]
    | Annotated[ProjectionOptions, Tag("projection")]
    | Annotated[RenameOptions, Tag("rename")]
    | Annotated[UnionOptions, Tag("union")]
    | Annotated[JoinOptions, Tag("join")]
    | Annotated[WindowOptions, Tag("window")]
    | Annotated[SqlOptions, Tag("sql")],
    Discriminator(
        _type_of,
        custom_error_type="processor_type",
        custom_error_message=f"unknown processor type; one of {TYPES_TEXT}",
    ),
]
_ADAPTER: TypeAdapter[ProcessorDecl] = TypeAdapter(ProcessorDecl)


def options_of(spec: Mapping[str, Any]) -> _Options:
    """The typed options of an already loaded ``processor:`` mapping."""
    return _ADAPTER.validate_python(dict(spec))


def as_mapping(options: BaseModel) -> dict[str, Any]:
    """The options as the plain mapping products carry (unset optional options left out)."""
    return options.model_dump(exclude_none=True)


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, if one is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None
