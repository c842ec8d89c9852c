"""Errors of the CDC connector, each a :mod:`datamesh.errors` terminal or transient branch.

Every message names the object (database, table, slot, column), what was expected, what was
found and the fix. Terminal errors stop the connector (exit code 2); transient ones make it
reconnect with back-off and resume from the replication slot, so nothing acknowledged is lost.
"""

from __future__ import annotations

from datamesh.errors import TerminalError, TransientError


class SourceConfigError(TerminalError):
    """The source database cannot be followed as configured (wal_level, PK, identity, ...)."""


class PublicationError(TerminalError):
    """The publication is missing a followed table (or the watermark table)."""


class SlotMissing(TerminalError):
    """The replication slot this connector used before is gone: changes may have been lost."""


class DecodeError(TerminalError):
    """A pgoutput message could not be decoded (a protocol mismatch or a corrupted stream)."""


class UnsupportedValue(TerminalError):
    """A column value cannot be represented in the column's Avro type."""

    def __init__(self, column: str, problem: str, fix: str) -> None:
        self.column = column
        super().__init__(f'column "{column}": {problem}', fix=fix)


class SchemaIncompatible(TerminalError):
    """The registry refused a table's new schema (HTTP 409): the table is paused."""

    def __init__(self, table: str, subject: str, columns: tuple[str, ...], detail: str) -> None:
        self.table = table
        self.subject = subject
        self.columns = columns
        named = ", ".join(columns) if columns else "(see the registry's reasons)"
        super().__init__(
            f"table {table}: the new schema of subject {subject} is incompatible with the "
            f"registered one (changed column(s): {named}); {detail}",
            fix=f"migrate the consumers of {subject}, then relax its compatibility (PUT "
            f"/config/{subject}); the table resumes by itself within --pause-retry-s, and the "
            "slot keeps every change until then (reverting the column alone does not resume "
            "it: changes written with the new type cannot use the old schema)",
        )


class SnapshotFilterRefused(TerminalError):
    """A ``snapshot --where`` filter that is not exactly one boolean expression on the table."""

    def __init__(self, where: str, table: str, problem: str) -> None:
        self.where = where
        self.table = table
        self.problem = problem
        super().__init__(
            f"--where {where!r} on {table} refused: {problem}",
            fix="pass one SQL condition over the table's columns and nothing else, e.g. "
            '--where "id < 1000" (no `;`, no statements, no comments)',
        )


class TablePaused(TerminalError):
    """A table stopped flowing (schema refused, truncate on a compacted topic, bad value)."""


class SourceUnavailable(TransientError):
    """PostgreSQL is unreachable or the stream broke; the connector reconnects from the slot."""


class DeliveryFailed(TransientError):
    """Kafka did not acknowledge an event; the stream is replayed from the slot."""


def truncate_on_compacted(table: str, topic: str) -> TablePaused:
    """TRUNCATE of a table whose topic is compacted (Kafka refuses null keys there)."""
    return TablePaused(
        f"TRUNCATE of {table} cannot be published: topic {topic} is compacted and Kafka "
        "refuses the null key of a truncate event",
        fix=f"set cleanup.policy=delete on {topic}, or run the connector with --truncate skip "
        "(consumers then never see TRUNCATE)",
    )
