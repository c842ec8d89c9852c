"""Tables taken as they are: REPLICA IDENTITY DEFAULT captured end to end, as Debezium does it
(key-only or null ``before``, unchanged TOAST values as its placeholder); NOTHING refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg2.errors
import pytest

from datamesh.cdc.unavailable import UNAVAILABLE_BYTES, UNAVAILABLE_VALUE
from tests.integration.cdc.conftest import DOMAIN, RunningConnector, SourceDb, TopicReader

pytestmark = pytest.mark.integration

# 10 kB of random hex and 5 kB of random bytes: pglz cannot shrink them by the 25% it needs,
# so both are stored out of line (TOAST) and an UPDATE that leaves them alone logs 'u'
BIG_TEXT = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 320))"
BIG_BYTES = f"decode({BIG_TEXT}, 'hex')"


def _table(db: SourceDb, ddl: str, identity: str | None = None) -> str:
    name = f"public.t_{uuid.uuid4().hex[:8]}"
    db.sql(f"CREATE TABLE {name} ({ddl})")
    if identity is not None:
        db.sql(f"ALTER TABLE {name} REPLICA IDENTITY {identity}")
    return name


def _row(i: int, title: str | None, body: Any, blob: Any, n: int | None) -> dict[str, Any]:
    return {"id": i, "title": title, "body": body, "blob": blob, "n": n}


def _key_only(i: int) -> dict[str, Any]:
    return _row(i, None, None, None, None)


def test_default_identity_is_captured_like_debezium(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    table = _table(source_db, "id int PRIMARY KEY, title text, body text, blob bytea, n int")
    assert source_db.sql(f"SELECT relreplident FROM pg_class WHERE oid = '{table}'::regclass") == [
        ("d",)
    ]
    run = connector((table,), snapshot="never", cleanup_policy="delete").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(
        f"INSERT INTO {table} VALUES (1, 'a', {BIG_TEXT}, {BIG_BYTES}, 7), "
        "(2, 'b', 'short', '\\x01', 8)"
    )
    body, blob = source_db.sql(f"SELECT body, blob FROM {table} WHERE id = 1")[0]
    assert len(body) == 10240 and len(blob) == 5120
    for statement in (
        f"UPDATE {table} SET title = 'x' WHERE id = 2",  # no old tuple: before null
        f"UPDATE {table} SET id = 20 WHERE id = 2",  # key changed: the 'K' image
        f"UPDATE {table} SET n = 9 WHERE id = 1",  # TOASTed body and blob left unchanged
        f"UPDATE {table} SET body = 'rewritten' WHERE id = 1",  # a TOASTed value changed
        f"UPDATE {table} SET id = 10 WHERE id = 1",  # key change with a TOASTed blob kept
        f"DELETE FROM {table} WHERE id = 10",
        f"DELETE FROM {table} WHERE id = 20",
    ):
        source_db.sql(statement)
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")

    summary = [
        (k and k["id"], v and v["op"], v and v["before"], v and v["after"]) for k, v in events
    ]
    unavailable = (UNAVAILABLE_VALUE, UNAVAILABLE_BYTES)
    assert summary == [
        (1, "c", None, _row(1, "a", body, bytes(blob), 7)),
        (2, "c", None, _row(2, "b", "short", b"\x01", 8)),
        (2, "u", None, _row(2, "x", "short", b"\x01", 8)),
        (2, "d", _key_only(2), None),
        (2, None, None, None),
        (20, "c", None, _row(20, "x", "short", b"\x01", 8)),
        (1, "u", None, _row(1, "a", *unavailable, 9)),
        (1, "u", None, _row(1, "a", "rewritten", UNAVAILABLE_BYTES, 9)),
        (1, "d", _key_only(1), None),
        (1, None, None, None),
        (10, "c", None, _row(10, "a", "rewritten", UNAVAILABLE_BYTES, 9)),
        (10, "d", _key_only(10), None),
        (10, None, None, None),
        (20, "d", _key_only(20), None),
        (20, None, None, None),
    ]
    status = run.status()
    assert status["state"] == "streaming" and not any(
        t.get("paused") for t in status["tables"].values()
    )


def test_identity_nothing_is_refused_with_the_fix(
    source_db: SourceDb, connector: Callable[..., RunningConnector]
) -> None:
    table = _table(source_db, "id int PRIMARY KEY, v text", identity="NOTHING")
    run = connector((table,))
    assert run.start().exit_code() == 2, run.log.read_text()
    status = run.status()
    assert status["state"] == "failed"
    error = str(status["error"])
    assert f"table {table} has REPLICA IDENTITY NOTHING" in error
    assert f"fix: ALTER TABLE {table} REPLICA IDENTITY FULL" in error
    assert f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT" in error


def test_identity_changed_while_streaming(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    """FULL -> DEFAULT keeps flowing with key-only images; NOTHING mid-stream is a warning (a
    replay would meet the same Relation again, and PostgreSQL refuses the updates and deletes
    it could not carry), and nothing is lost."""
    table = _table(source_db, "id int PRIMARY KEY, v text", identity="FULL")
    run = connector((table,), snapshot="never", cleanup_policy="delete").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {table} VALUES (1, 'a')")
    source_db.sql(f"UPDATE {table} SET v = 'b' WHERE id = 1")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT")
    source_db.sql(f"UPDATE {table} SET v = 'c' WHERE id = 1")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY NOTHING")
    source_db.sql(f"INSERT INTO {table} VALUES (2, 'd')")
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState, match="replica identity"):
        source_db.sql(f"DELETE FROM {table} WHERE id = 1")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT")
    source_db.sql(f"DELETE FROM {table} WHERE id = 1")
    status = run.wait_caught_up(source_db)
    assert status["tables"][table]["paused"] is None
    assert f"WARNING table {table} has REPLICA IDENTITY NOTHING" in run.log.read_text()
    events = reader.read(f"{DOMAIN}.{table}")
    summary = [(k["id"], v and v["op"], v and v["before"], v and v["after"]) for k, v in events]
    assert summary == [
        (1, "c", None, {"id": 1, "v": "a"}),
        (1, "u", {"id": 1, "v": "a"}, {"id": 1, "v": "b"}),  # FULL: the whole old row
        (1, "u", None, {"id": 1, "v": "c"}),  # DEFAULT from here on
        (2, "c", None, {"id": 2, "v": "d"}),
        (1, "d", {"id": 1, "v": None}, None),
        (1, None, None, None),
    ]


def test_identity_using_an_index_over_the_key(
    source_db: SourceDb, connector: Callable[..., RunningConnector], reader: TopicReader
) -> None:
    """USING INDEX is key-only like DEFAULT with the index's columns; an index without the
    whole primary key is refused (a delete would not carry the Kafka key)."""
    ddl = "id int PRIMARY KEY, code text NOT NULL, v text"
    narrow = _table(source_db, ddl)
    source_db.sql(f"CREATE UNIQUE INDEX {narrow[7:]}_code ON {narrow} (code)")
    source_db.sql(f"ALTER TABLE {narrow} REPLICA IDENTITY USING INDEX {narrow[7:]}_code")
    refused = connector((narrow,))
    assert refused.start().exit_code() == 2, refused.log.read_text()
    error = str(refused.status()["error"])
    assert f"table {narrow} has REPLICA IDENTITY USING INDEX" in error
    assert "(code) do not include the primary key (id)" in error

    table = _table(source_db, ddl)
    source_db.sql(f"CREATE UNIQUE INDEX {table[7:]}_code_id ON {table} (code, id)")
    source_db.sql(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX {table[7:]}_code_id")
    run = connector((table,), snapshot="never", cleanup_policy="delete").start()
    run.wait_status(lambda s: s["state"] == "streaming", "streaming")
    source_db.sql(f"INSERT INTO {table} VALUES (1, 'a', 'x')")
    source_db.sql(f"UPDATE {table} SET v = 'y' WHERE id = 1")  # identity columns unchanged
    source_db.sql(f"UPDATE {table} SET code = 'b' WHERE id = 1")  # logged with the 'K' image
    source_db.sql(f"DELETE FROM {table} WHERE id = 1")
    run.wait_caught_up(source_db)
    events = reader.read(f"{DOMAIN}.{table}")
    summary = [(k["id"], v and v["op"], v and v["before"], v and v["after"]) for k, v in events]
    assert summary == [
        (1, "c", None, {"id": 1, "code": "a", "v": "x"}),
        (1, "u", None, {"id": 1, "code": "a", "v": "y"}),
        (1, "u", {"id": 1, "code": "a", "v": None}, {"id": 1, "code": "b", "v": "y"}),
        (1, "d", {"id": 1, "code": "b", "v": None}, None),
        (1, None, None, None),
    ]
