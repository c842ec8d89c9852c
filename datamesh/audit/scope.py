"""Which rows an audit compares: the one place that decides what both sides leave out.

Today nothing is left out: synthetic heartbeat events (:mod:`datamesh.heartbeat`) never become
rows of a source or sink table — they are WAL messages at the source, records that every hop
recognises by :func:`datamesh.heartbeat.is_heartbeat`, rows of a PostgreSQL sink's separate
``mesh_heartbeats`` table and entries of an Iceberg snapshot's summary. Should the platform ever
write rows of its own into audited tables, they are excluded here, once, and both sides apply the
same :class:`Exclusion`: the PostgreSQL side as a SQL condition, the Iceberg side as a pyarrow
filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.compute as pc


@dataclass(frozen=True)
class Exclusion:
    """Rows to leave out: ``sql`` is a condition rows are kept by (None: all), ``arrow`` the
    same as a pyarrow expression over the side's column names."""

    sql: str | None = None
    arrow: pc.Expression | None = None


def excluded_rows(columns: Sequence[str]) -> Exclusion:
    """The rows an audit of a table with ``columns`` leaves out on either side (none yet)."""
    del columns  # no platform rows in audited tables (heartbeats stay out of them)
    return Exclusion()
