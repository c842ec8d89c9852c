"""Compatibility levels and checks, delegated to ``avro.compatibility``.

The resolution rules themselves (promotions, defaults, enum symbols, unions, aliases, names)
come from ``avro.compatibility.ReaderWriterCompatibilityChecker``; this module only decides which
(reader, writer) pairs a level asks for and turns the checker's result into readable reasons.

Levels (Confluent semantics):

- BACKWARD: the new schema, as reader, can read data written with the latest version.
- FORWARD: the latest version, as reader, can read data written with the new schema.
- FULL: both.
- ``*_TRANSITIVE``: the same against every live (not soft-deleted) version, not only the latest.
- NONE: no check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

from datamesh.registry.errors import invalid_compatibility_level

LEVELS: tuple[str, ...] = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
DEFAULT_LEVEL = "BACKWARD"


@dataclass(frozen=True)
class PreviousVersion:
    """A live registered version of the subject that a new schema is checked against."""

    version: int
    schema: avro.schema.Schema


def normalize_level(level: object) -> str:
    """Return ``level`` upper-cased if it names a level; else raise ``RegistryError`` 42203."""
    if isinstance(level, str) and level.upper() in LEVELS:
        return level.upper()
    raise invalid_compatibility_level(level)


def is_transitive(level: str) -> bool:
    return level.endswith("_TRANSITIVE")


def directions(level: str) -> tuple[bool, bool]:
    """(check backward, check forward) for a normalized level."""
    base = level.removesuffix("_TRANSITIVE")
    return base in ("BACKWARD", "FULL"), base in ("FORWARD", "FULL")


def check_pair(reader: avro.schema.Schema, writer: avro.schema.Schema) -> SchemaCompatibilityResult:
    """Can ``reader`` read every datum written with ``writer``? (the avro checker's verdict)."""
    # A fresh checker per pair: it memoizes on object identity and is not thread-safe.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    try:
        return checker.get_compatibility(reader, writer)
    except RecursionError:
        # The checker recurses per nesting level; the parser refuses deeper schemas first, but
        # if one ever gets through, refusing it beats answering the client with a 500.
        return SchemaCompatibilityResult(
            SchemaCompatibilityType.incompatible,
            [SchemaIncompatibilityType.type_mismatch],
            {"schemas too deeply nested to check"},
            {"/"},
        )


def check(new: avro.schema.Schema, previous: Sequence[PreviousVersion], level: str) -> list[str]:
    """Reasons why ``new`` breaks ``level`` against ``previous`` (oldest first); [] = compatible.

    ``previous`` must hold only live versions. Non-transitive levels look at the last one only.
    """
    backward, forward = directions(level)
    if not previous or not (backward or forward):
        return []
    targets = previous if is_transitive(level) else previous[-1:]
    reasons: list[str] = []
    # Newest first, like Confluent, so the first reason concerns the most recent version.
    for old in reversed(targets):
        if backward:
            result = check_pair(new, old.schema)
            reasons += describe(
                result, f"new schema cannot read data written by version {old.version} ({level})"
            )
        if forward:
            result = check_pair(old.schema, new)
            reasons += describe(
                result,
                f"version {old.version} cannot read data written by the new schema ({level})",
            )
    return reasons


def describe(result: SchemaCompatibilityResult, context: str) -> list[str]:
    """Readable reasons from one checker result, each prefixed with ``context``; [] if compatible.

    The checker returns an ordered list of incompatibility types but merges the messages and
    locations of several problems into *sets*, so with more than one problem a message can no
    longer be paired with its location. One problem: an exact "TYPE at LOCATION: detail" line.
    Several: one line per message (typed by the message's shape) plus one listing the locations.
    """
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    kinds = list(result.incompatibilities)
    messages = sorted(result.messages)
    locations = _real_locations(result.locations)
    if len(kinds) == 1 and len(messages) == 1:
        where = locations[0] if len(locations) == 1 else ", ".join(locations)
        return [f"{context}: {_kind_name(kinds[0])} at {where}: {_explain(kinds[0], messages[0])}"]
    reasons = []
    for message in messages:
        kind = _classify(message, kinds)
        reasons.append(f"{context}: {_kind_name(kind)}: {_explain(kind, message)}")
    reasons.append(f"{context}: incompatible locations: {', '.join(locations)}")
    return reasons


def _real_locations(locations: set[str]) -> list[str]:
    # merge() unions in the locations of the compatible side too, and a compatible result's
    # locations default to {"/"}; so "/" next to deeper paths is noise, not a root problem.
    found = sorted(locations)
    deeper = [loc for loc in found if loc != "/"]
    return deeper or found or ["/"]


def _kind_name(kind: SchemaIncompatibilityType | None) -> str:
    return kind.value.upper() if kind is not None else "INCOMPATIBLE"


def _classify(
    message: str, kinds: list[SchemaIncompatibilityType]
) -> SchemaIncompatibilityType | None:
    """The incompatibility type of one message, from the shape of the checker's message text."""
    distinct = set(kinds)
    if len(distinct) == 1:
        return kinds[0]
    shapes = (
        (r"^reader type: ", SchemaIncompatibilityType.type_mismatch),
        (r"^reader union lacking writer type", SchemaIncompatibilityType.missing_union_branch),
        (r"^expected: \d+, found: \d+$", SchemaIncompatibilityType.fixed_size_mismatch),
        (r"^expected: ", SchemaIncompatibilityType.name_mismatch),
        (r"^\{.*\}$", SchemaIncompatibilityType.missing_enum_symbols),
        (r"^[A-Za-z_][A-Za-z0-9_]*$", SchemaIncompatibilityType.reader_field_missing_default_value),
    )
    for pattern, kind in shapes:
        if kind in distinct and re.match(pattern, message):
            return kind
    return None


def _explain(kind: SchemaIncompatibilityType | None, message: str) -> str:
    """Turn the checker's terse message into a sentence (the terse text is kept verbatim)."""
    if kind is SchemaIncompatibilityType.reader_field_missing_default_value:
        return f"reader field '{message}' has no default value and is missing from the writer"
    if kind is SchemaIncompatibilityType.missing_enum_symbols:
        return f"reader enum lacks writer symbols {message}"
    if kind is SchemaIncompatibilityType.name_mismatch:
        return f"reader name differs from the writer's and no alias matches ({message})"
    if kind is SchemaIncompatibilityType.fixed_size_mismatch:
        return f"fixed sizes differ ({message})"
    return message
