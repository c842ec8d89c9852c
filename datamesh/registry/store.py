"""Durable registry state in one SQLite file.

Tables:

- ``schemas(id, canonical UNIQUE, schema)``: one row per distinct schema. ``id`` is
  ``AUTOINCREMENT`` so an id is never handed out twice, even if rows were ever removed; rows are
  never updated, so an id always means the same schema.
- ``subject_versions(subject, version, schema_id, deleted)``: the versions of each subject.
  Soft delete sets ``deleted``; permanent delete removes the row (never the schema).
- ``config(subject, level)``: compatibility level per subject; ``''`` is the global level.

Contract: every operation runs in ONE transaction through ``read`` or ``write``; a
``RegistryError`` raised inside rolls the whole write back, so nothing partial is ever stored.
SQLite failures surface as ``RegistryError`` 50001.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from datamesh.registry.errors import store_error

T = TypeVar("T")
GLOBAL = ""  # the config key of the global compatibility level
DB_FILE = "registry.sqlite3"

_DDL = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    canonical TEXT NOT NULL UNIQUE,
    schema TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS subject_versions_by_schema ON subject_versions(schema_id);
-- A schema appears at most once among the live versions of a subject.
CREATE UNIQUE INDEX IF NOT EXISTS subject_live_schema
    ON subject_versions(subject, schema_id) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS config (
    subject TEXT PRIMARY KEY,
    level TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class VersionRow:
    """One version of a subject, with its schema text."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


class Tx:
    """Queries and updates inside one open transaction (only valid inside ``read``/``write``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def versions(self, subject: str, include_deleted: bool) -> list[VersionRow]:
        """Versions of ``subject``, ascending; soft-deleted ones only if ``include_deleted``."""
        rows = self._conn.execute(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted"
            " FROM subject_versions v JOIN schemas s ON s.id = v.schema_id"
            " WHERE v.subject = ? AND (? OR v.deleted = 0) ORDER BY v.version",
            (subject, include_deleted),
        ).fetchall()
        return [VersionRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def versions_by_prefix(
        self, prefix: str, latest_only: bool, include_deleted: bool
    ) -> list[VersionRow]:
        """Versions of every subject starting with ``prefix``, by subject then version; only
        each subject's latest with ``latest_only``; soft-deleted ones only with
        ``include_deleted``."""
        live = "(? OR v.deleted = 0)"
        latest = (
            " AND v.version = (SELECT MAX(w.version) FROM subject_versions w"
            " WHERE w.subject = v.subject AND (? OR w.deleted = 0))"
        )
        rows = self._conn.execute(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted"
            " FROM subject_versions v JOIN schemas s ON s.id = v.schema_id"
            f" WHERE substr(v.subject, 1, ?) = ? AND {live}{latest if latest_only else ''}"
            " ORDER BY v.subject, v.version",
            (len(prefix), prefix, include_deleted, *((include_deleted,) if latest_only else ())),
        ).fetchall()
        return [VersionRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def subjects(self, include_deleted: bool) -> list[str]:
        """Subjects with at least one version (live, or any if ``include_deleted``), sorted."""
        rows = self._conn.execute(
            "SELECT DISTINCT subject FROM subject_versions WHERE ? OR deleted = 0 ORDER BY subject",
            (include_deleted,),
        ).fetchall()
        return [r[0] for r in rows]

    def schema_text(self, schema_id: int) -> str | None:
        row = self._conn.execute("SELECT schema FROM schemas WHERE id = ?", (schema_id,)).fetchone()
        return None if row is None else str(row[0])

    def schema_usages(self, schema_id: int, include_deleted: bool) -> list[tuple[str, int]]:
        """(subject, version) pairs that use ``schema_id``, sorted."""
        rows = self._conn.execute(
            "SELECT subject, version FROM subject_versions"
            " WHERE schema_id = ? AND (? OR deleted = 0) ORDER BY subject, version",
            (schema_id, include_deleted),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def schema_id_for(self, canonical: str) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM schemas WHERE canonical = ?", (canonical,)
        ).fetchone()
        return None if row is None else int(row[0])

    def add_schema(self, canonical: str, text: str) -> int:
        """Store a new distinct schema and return its fresh id."""
        cursor = self._conn.execute(
            "INSERT INTO schemas (canonical, schema) VALUES (?, ?)", (canonical, text)
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def next_version(self, subject: str) -> int:
        # Soft-deleted versions keep their numbers, so numbering continues after them.
        row = self._conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM subject_versions WHERE subject = ?",
            (subject,),
        ).fetchone()
        return int(row[0])

    def add_version(self, subject: str, version: int, schema_id: int) -> None:
        self._conn.execute(
            "INSERT INTO subject_versions (subject, version, schema_id) VALUES (?, ?, ?)",
            (subject, version, schema_id),
        )

    def soft_delete(self, subject: str, versions: list[int]) -> None:
        self._conn.executemany(
            "UPDATE subject_versions SET deleted = 1 WHERE subject = ? AND version = ?",
            [(subject, v) for v in versions],
        )

    def hard_delete(self, subject: str, versions: list[int]) -> None:
        self._conn.executemany(
            "DELETE FROM subject_versions WHERE subject = ? AND version = ?",
            [(subject, v) for v in versions],
        )

    def level(self, subject: str) -> str | None:
        """The configured level of ``subject`` (``GLOBAL`` for the global one), if any."""
        query = "SELECT level FROM config WHERE subject = ?"
        row = self._conn.execute(query, (subject,)).fetchone()
        return None if row is None else str(row[0])

    def set_level(self, subject: str, level: str) -> None:
        self._conn.execute(
            "INSERT INTO config (subject, level) VALUES (?, ?)"
            " ON CONFLICT(subject) DO UPDATE SET level = excluded.level",
            (subject, level),
        )

    def delete_level(self, subject: str) -> None:
        self._conn.execute("DELETE FROM config WHERE subject = ?", (subject,))


class Store:
    """The SQLite store of one data directory; safe to share between threads."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each operation is exactly one
        # transaction. check_same_thread=False: requests run on a thread pool; the lock below
        # makes sure only one thread uses the connection at a time.
        try:
            self._conn = sqlite3.connect(
                data_dir / DB_FILE, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise store_error(str(exc)) from exc
        # One process-wide lock around every transaction: registrations are read-check-insert
        # sequences, and serializing them is what makes concurrent clients see one consistent
        # id per schema and gap-free version numbers.
        self._lock = threading.Lock()
        try:
            # WAL: readers never block the writer and a commit is one append to the log.
            self._conn.execute("PRAGMA journal_mode=WAL")
            # synchronous=FULL: COMMIT returns only after the WAL is fsynced, so a registration
            # we acknowledged survives a process kill AND an OS crash or power loss (NORMAL
            # would only survive a process crash in WAL mode).
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_DDL)
        except sqlite3.Error as exc:
            self._conn.close()
            raise store_error(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot) and return its result."""
        with self._transaction("BEGIN") as tx:
            return fn(tx)

    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a write transaction; commit if it returns, roll back if it raises."""
        # IMMEDIATE takes SQLite's write lock up front, which also fences off another process
        # that might (wrongly) open the same data directory.
        with self._transaction("BEGIN IMMEDIATE") as tx:
            return fn(tx)

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Tx]:
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise store_error(str(exc)) from exc
            try:
                yield Tx(self._conn)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise store_error(str(exc)) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
