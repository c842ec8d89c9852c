"""The demo generator's change mix: every kind of change, realistic values, valid targets,
cascades that keep the foreign keys, and the schema-change schedule."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest

from datamesh.demo.changes import (
    LOCATIONS,
    MIN_ROWS,
    MOVIE_STATUSES,
    NOW,
    OP_WEIGHTS,
    OPS,
    SCHEMA_CHANGES,
    START_WINDOW_DAYS,
    TABLES,
    Change,
    Live,
    due_schema_change,
    next_change,
)
from datamesh.demo.writer import statements

TODAY = dt.date(2026, 12, 1)


def _seeded() -> Live:
    return Live(
        movies={1: "released", 2: "development", 3: "post", 4: "production"},
        productions={10: 3, 11: 4, 12: 2},
        talent={20: 1, 21: 3, 22: 4},
        artwork={100: 1, 101: 1, 102: 2},
        next_id=103,
    )


def _run(n: int, seed: int = 7) -> tuple[Live, list[Change]]:
    rng, live, out = random.Random(seed), _seeded(), []
    for _ in range(n):
        change = next_change(rng, live, TODAY)
        out.append(change)
        live.record(change)
    return live, out


def test_the_mix_follows_the_declared_weights() -> None:
    _, changes = _run(20_000)
    ops = Counter(c.op for c in changes)
    for op, weight in zip(OPS, OP_WEIGHTS, strict=True):
        assert abs(ops[op] / len(changes) - weight) < 0.03, (op, ops)
    tables = Counter(c.table for c in changes)
    for _, table, weight in TABLES:
        assert abs(tables[table] / len(changes) - weight) < 0.03, (table, tables)


def test_updates_and_deletes_target_live_rows_and_inserts_take_new_ids() -> None:
    rng, live = random.Random(3), _seeded()
    for _ in range(5_000):
        change = next_change(rng, live, TODAY)
        rows = live.rows(change.table)
        if change.op == "insert":
            assert change.id == live.next_id and change.id not in rows
        else:
            assert change.id in rows
        for table, child in change.cascade:
            assert live.rows(table)[child] == change.id  # only this movie's children
        live.record(change)
        # children never outlive their movie (the studio database's foreign keys)
        assert set(live.productions.values()) | set(live.talent.values()) <= set(live.movies)


@pytest.mark.parametrize("table", ["productions", "talent", "artwork"])
def test_a_child_row_references_a_live_movie(table: str) -> None:
    _, changes = _run(3_000)
    inserts = [c for c in changes if c.table == table and c.op == "insert"]
    assert inserts
    assert all(isinstance(c.values["movie_id"], int) for c in inserts)


def test_deleting_a_movie_deletes_its_productions_and_talent_first() -> None:
    live = _seeded()
    rng = random.Random(0)
    change = None
    while change is None or not (change.table == "movies" and change.op == "delete"):
        change = next_change(rng, live, TODAY)
    expected = {("productions", i) for i, m in live.productions.items() if m == change.id}
    expected |= {("talent", i) for i, m in live.talent.items() if m == change.id}
    assert set(change.cascade) == expected
    rendered = statements(change)
    assert [params for _, params in rendered] == [(i,) for _, i in change.cascade] + [(change.id,)]
    assert [q.split()[2] for q, _ in rendered] == [
        *(f'public."{t}"' for t, _ in change.cascade),
        'public."movies"',
    ]


def test_realistic_values() -> None:
    live, changes = _run(5_000)
    starts = [c.values for c in changes if c.table == "productions" and c.op == "insert"]
    for row in starts:
        assert row["location"] in LOCATIONS[str(row["region"])]
        started = row["started_on"]
        assert isinstance(started, dt.date)
        assert 0 <= (TODAY - started).days < START_WINDOW_DAYS
    moves = [c.values for c in changes if c.table == "productions" and "region" in c.values]
    assert moves and all(m["location"] in LOCATIONS[str(m["region"])] for m in moves)
    movie_updates = [c.values for c in changes if c.table == "movies" and c.op == "update"]
    assert all(v["status"] in MOVIE_STATUSES and v["updated_at"] is NOW for v in movie_updates)
    assert set(live.movies.values()) <= set(MOVIE_STATUSES)


def test_a_nearly_empty_table_only_gets_inserts() -> None:
    live = Live(movies={1: "development"}, next_id=2)
    rng = random.Random(1)
    for _ in range(200):
        change = next_change(rng, live, TODAY)
        if len(live.rows(change.table)) < MIN_ROWS:
            assert change.op == "insert"
        live.record(change)
    empty = Live()
    assert next_change(random.Random(2), empty, TODAY).table == "movies"  # children need one


def test_inserts_fill_the_columns_schema_changes_added() -> None:
    live = _seeded()
    live.columns = frozenset({"talent.agency"})
    rng = random.Random(5)
    talent: list[Change] = []
    while len(talent) < 20:
        change = next_change(rng, live, TODAY)
        live.record(change)
        if change.table == "talent" and change.op == "insert":
            talent.append(change)
    assert all(isinstance(c.values["agency"], str) for c in talent)
    others = [c for c in _run(500)[1] if c.op == "insert"]
    assert not any("agency" in c.values or "width_px" in c.values for c in others)


@pytest.mark.parametrize(
    ("elapsed", "every", "done", "expected"),
    [
        (0, 600, set(), None),                          # none before the first interval
        (599, 600, set(), None),
        (600, 600, set(), SCHEMA_CHANGES[0].name),
        (700, 600, {SCHEMA_CHANGES[0].name}, None),     # one per interval
        (1200, 600, {SCHEMA_CHANGES[0].name}, SCHEMA_CHANGES[1].name),
        (5000, 600, {c.name for c in SCHEMA_CHANGES}, None),   # all applied: no more
        (5000, 600, {SCHEMA_CHANGES[1].name}, SCHEMA_CHANGES[0].name),  # found in the tables
        (10**6, 0, set(), None),                        # 0: never
    ],
)  # fmt: skip
def test_schema_changes_are_spaced_and_applied_once(
    elapsed: float, every: float, done: set[str], expected: str | None
) -> None:
    due = due_schema_change(elapsed, every, frozenset(done))
    assert (due.name if due else None) == expected


def test_statements_render_inserts_updates_and_now() -> None:
    insert = Change("studio", "talent", "insert", 30, {"movie_id": 1, "name": "A", "role": "actor"})
    update = Change("studio", "movies", "update", 2, {"status": "post", "updated_at": NOW})
    [(q1, p1)] = statements(insert)
    [(q2, p2)] = statements(update)
    assert q1 == (
        'INSERT INTO public."talent" (id, "movie_id", "name", "role") VALUES (%s, %s, %s, %s) '
        "ON CONFLICT (id) DO NOTHING"
    )
    assert p1 == (30, 1, "A", "actor")
    assert q2 == 'UPDATE public."movies" SET "status" = %s, "updated_at" = now() WHERE id = %s'
    assert p2 == ("post", 2)
