"""The logical replication connection: pgoutput from a slot, feedback of confirmed LSNs.

psycopg2's ``LogicalReplicationConnection`` is used because psycopg 3 has no replication
streaming. ``read_message`` (non-blocking) rather than ``consume_stream`` keeps the connector's
loop in charge of heartbeats, snapshot chunks and status between messages. Feedback: psycopg2
sends ``flush_lsn`` every ``status_interval`` and, on keepalives, moves it to the server's WAL
end only if we had confirmed the last data message we received (``explicitly_flushed_lsn``),
which keeps the at-least-once guarantee when the stream is idle.
"""

from __future__ import annotations

import contextlib
import select
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extras

from datamesh.cdc.catalog import connect
from datamesh.cdc.errors import PublicationError, SlotMissing, SourceUnavailable

FEEDBACK_INTERVAL_S = 1


def _broken(action: str, exc: Exception) -> SourceUnavailable:
    return SourceUnavailable(
        f"replication stream {action} failed: {str(exc).strip() or type(exc).__name__}",
        fix="check that PostgreSQL is up; the connector reconnects and resumes from the slot",
    )


class ReplicationStream:
    """One START_REPLICATION session on ``slot`` for ``publication``."""

    def __init__(self, dsn: str, slot: str, publication: str, application_name: str) -> None:
        self._dsn = dsn
        self._slot = slot
        self._publication = publication
        self._name = application_name
        self._conn: Any = None
        self._cur: Any = None

    def open(self, start_lsn: int) -> None:
        """Connect and start streaming after ``start_lsn`` (0: the slot's confirmed position)."""
        self._conn = connect(
            self._dsn, self._name, connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        self._cur = self._conn.cursor()
        try:
            self._cur.start_replication(
                slot_name=self._slot,
                decode=False,
                start_lsn=start_lsn,
                status_interval=FEEDBACK_INTERVAL_S,
                options={
                    "proto_version": "1",
                    "publication_names": self._publication,
                    "messages": "true",  # heartbeats arrive as Message records
                },
            )
        except psycopg2.errors.UndefinedObject as exc:  # slot (or publication) is gone
            self.close()
            raise SlotMissing(
                f"replication slot {self._slot} or publication {self._publication} does not "
                f"exist: {str(exc).strip()}",
                fix="restart the connector with --recreate-slot (and --snapshot initial to "
                "re-read the tables); changes made while the slot was missing are not in Kafka",
            ) from exc
        except psycopg2.Error as exc:  # e.g. the slot is still held by a dying session
            self.close()
            raise _broken("start", exc) from exc

    def read(self) -> Any:
        """The next message (``payload``, ``data_start``), or None when none is waiting."""
        try:
            return self._cur.read_message()
        except psycopg2.errors.UndefinedObject as exc:  # the publication was dropped
            raise PublicationError(
                f"replication stream failed: {str(exc).strip()}",
                fix=f"CREATE PUBLICATION {self._publication} again; pgoutput reads it as of each "
                "change, so changes made while it was missing need --recreate-slot --snapshot "
                "initial",
            ) from exc
        except psycopg2.Error as exc:
            raise _broken("read", exc) from exc

    def wait(self, timeout_s: float) -> None:
        """Block until data arrives or ``timeout_s`` passes."""
        try:
            select.select([self._conn], [], [], timeout_s)
        except (OSError, ValueError) as exc:
            raise _broken("wait", exc) from exc

    def confirm(self, lsn: int, force: bool = False) -> None:
        """Tell the server everything before ``lsn`` is durable downstream."""
        try:
            self._cur.send_feedback(write_lsn=lsn, flush_lsn=lsn, force=force)
        except psycopg2.Error as exc:
            raise _broken("feedback", exc) from exc

    @property
    def wal_end(self) -> int:
        """The server's WAL end as of the last message or keepalive."""
        return int(self._cur.wal_end) if self._cur is not None else 0

    def close(self) -> None:
        """Close the connection (idempotent; errors of a dead connection are ignored)."""
        conn, self._conn, self._cur = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(psycopg2.Error):
                conn.close()
