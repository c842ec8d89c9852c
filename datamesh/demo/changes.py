"""The demo generator's change mix, as pure functions over what the source tables hold.

:func:`next_change` picks the next row change — which table, insert / update / delete, and
realistic values (movies advance development → production → post → released, productions
start in a city of a region and move through their stages, talent is credited and re-credited,
artwork is re-rendered) — from a random source and the live ids (:class:`Live`).
:func:`due_schema_change` says when the next compatible schema change (a nullable column
added, :data:`SCHEMA_CHANGES`) is due. The writer (:mod:`datamesh.demo.writer`) applies both.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["insert", "update", "delete"]
OPS: tuple[Op, ...] = ("insert", "update", "delete")
OP_WEIGHTS = (0.45, 0.40, 0.15)  # the tables grow slowly while every kind of change flows
# Which table a change touches (database, table, weight): productions change most, and feed
# the analytics aggregate.
TABLES: tuple[tuple[str, str, float], ...] = (
    ("studio", "movies", 0.20),
    ("studio", "productions", 0.35),
    ("studio", "talent", 0.25),
    ("content", "artwork", 0.20),
)
MIN_ROWS = 3  # below this a table only gets inserts, so updates and deletes find rows
MOVIE_STATUSES = ("development", "production", "post", "released")
STAGES = ("pre-production", "principal photography", "editing", "visual effects", "wrapped")
# Shooting locations by Netflix region (the aggregate's `region`).
LOCATIONS: Mapping[str, tuple[str, ...]] = {
    "UCAN": ("Los Angeles", "Albuquerque", "Atlanta", "Vancouver", "Toronto"),
    "EMEA": ("London", "Madrid", "Berlin", "Cape Town", "Budapest"),
    "LATAM": ("Mexico City", "Bogota", "Sao Paulo", "Buenos Aires"),
    "APAC": ("Seoul", "Tokyo", "Mumbai", "Sydney", "Bangkok"),
}
ROLES = ("actor", "director", "writer", "producer")
LOCALES = ("en-US", "fr-FR", "es-ES", "pt-BR", "ko-KR", "ja-JP", "de-DE", "hi-IN")
_ADJECTIVES = ("Silent", "Red", "Last", "Hidden", "Broken", "Golden", "Midnight", "Lost", "Wild")
_NOUNS = ("Harbor", "Notice", "Kingdom", "Signal", "Orchard", "Frontier", "Echo", "Tide")
_FIRST = ("Ana", "Kofi", "Mei", "Lars", "Priya", "Diego", "Yuna", "Omar", "Chloe", "Ivan")
_LAST = ("Okafor", "Lindqvist", "Moreno", "Tanaka", "Haddad", "Novak", "Reyes", "Kim", "Patel")
START_WINDOW_DAYS = 14  # productions start on one of the last two weeks' days


class Now:
    """A value the writer renders as the database's ``now()``."""

    def __repr__(self) -> str:
        return "now()"


NOW = Now()


@dataclass(frozen=True)
class Change:
    """One row change: ``values`` are every column of an insert, the changed columns of an
    update, nothing for a delete. Deleting a movie deletes its productions and talent first
    (``cascade``: (table, id) pairs), as the studio database's foreign keys require."""

    database: str
    table: str
    op: Op
    id: int
    values: Mapping[str, object] = field(default_factory=dict)
    cascade: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class AddColumn:
    """A compatible schema change: ``ALTER TABLE <table> ADD COLUMN <column> <sql_type>``
    (nullable, so every consumer reads on; the connector registers the new envelope)."""

    database: str
    table: str
    column: str
    sql_type: str

    @property
    def name(self) -> str:
        """``<table>.<column>``."""
        return f"{self.table}.{self.column}"


# Added to tables no tier-1 product reads, in this order, one per interval: each makes its CDC
# product's declared schema lag the table (its `drift` check says so, at WARN) until the
# declaration is edited, while the column itself flows on to the sinks.
SCHEMA_CHANGES: tuple[AddColumn, ...] = (
    AddColumn("studio", "talent", "agency", "text"),
    AddColumn("content", "artwork", "width_px", "integer"),
    AddColumn("studio", "talent", "credited_as", "text"),
)


@dataclass
class Live:
    """The ids each table holds now (children with their movie), and the next free id."""

    movies: dict[int, str] = field(default_factory=dict)  # id -> status
    productions: dict[int, int] = field(default_factory=dict)  # id -> movie_id
    talent: dict[int, int] = field(default_factory=dict)
    artwork: dict[int, int] = field(default_factory=dict)
    next_id: int = 1
    columns: frozenset[str] = frozenset()  # `<table>.<column>` added by schema changes

    def rows(self, table: str) -> dict[int, int] | dict[int, str]:
        """The ids of ``table`` (a mapping keyed by id)."""
        tables: dict[str, dict[int, int] | dict[int, str]] = {
            "movies": self.movies,
            "productions": self.productions,
            "talent": self.talent,
            "artwork": self.artwork,
        }
        return tables[table]

    def record(self, change: Change) -> None:
        """Account for ``change`` having been applied."""
        self.next_id = max(self.next_id, change.id + 1)
        for table, child in change.cascade:
            self.rows(table).pop(child, None)
        if change.op == "delete":
            self.rows(change.table).pop(change.id, None)
        elif change.table == "movies":
            old = self.movies.get(change.id, "development")
            self.movies[change.id] = str(change.values.get("status", old))
        elif change.op == "insert":
            rows: dict[int, int] = self.rows(change.table)  # type: ignore[assignment]
            rows[change.id] = int(str(change.values["movie_id"]))


def next_change(rng: random.Random, live: Live, today: dt.date) -> Change:
    """The next row change. A table with fewer than :data:`MIN_ROWS` rows (or children
    without any movie) gets an insert; otherwise the op is drawn by :data:`OP_WEIGHTS`."""
    database, table, _ = rng.choices(TABLES, weights=[w for *_, w in TABLES])[0]
    if table != "movies" and not live.movies:
        database, table = "studio", "movies"
    op: Op = rng.choices(OPS, weights=OP_WEIGHTS)[0]
    if len(live.rows(table)) < MIN_ROWS:
        op = "insert"
    if op == "insert":
        return Change(database, table, "insert", live.next_id, _new_row(rng, table, live, today))
    target = rng.choice(sorted(live.rows(table)))
    if op == "delete":
        return Change(database, table, "delete", target, cascade=_children(live, table, target))
    return Change(database, table, "update", target, _updated(rng, table, live, target))


def _new_row(rng: random.Random, table: str, live: Live, today: dt.date) -> dict[str, object]:
    if table == "movies":
        title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        return {"title": title, "status": "development", "release_year": None}
    row: dict[str, object] = {"movie_id": rng.choice(sorted(live.movies))}
    if table == "productions":
        region = rng.choice(sorted(LOCATIONS))
        started = today - dt.timedelta(days=rng.randrange(START_WINDOW_DAYS))
        row |= {
            "stage": STAGES[0],
            "location": rng.choice(LOCATIONS[region]),
            "region": region,
            "budget": rng.randrange(5, 200) * 1_000_000,
            "started_on": started,
        }
    elif table == "talent":
        row |= {"name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "role": rng.choice(ROLES)}
    else:
        locale = rng.choice(LOCALES)
        row |= {"locale": locale, "url": _art_url(row["movie_id"], locale, 1)}
    return row | _added_values(rng, table, live.columns)


def _updated(rng: random.Random, table: str, live: Live, target: int) -> dict[str, object]:
    if table == "movies":
        status = MOVIE_STATUSES[
            min(MOVIE_STATUSES.index(live.movies[target]) + 1, len(MOVIE_STATUSES) - 1)
        ]
        release = {"release_year": 2026} if status == "released" else {}
        return {"status": status, "updated_at": NOW} | release
    if table == "productions":
        if rng.random() < 0.5:  # a production moves: its count moves to another region
            region = rng.choice(sorted(LOCATIONS))
            return {"location": rng.choice(LOCATIONS[region]), "region": region}
        return {"stage": rng.choice(STAGES[1:]), "budget": rng.randrange(5, 200) * 1_000_000}
    if table == "talent":
        return {"role": rng.choice(ROLES)}
    return {"url": _art_url(live.artwork[target], rng.choice(LOCALES), rng.randrange(2, 100))}


def _added_values(rng: random.Random, table: str, columns: frozenset[str]) -> dict[str, object]:
    """Values for the columns schema changes added to ``table`` (inserts fill them)."""
    out: dict[str, object] = {}
    for change in SCHEMA_CHANGES:
        if change.table == table and change.name in columns:
            out[change.column] = (
                rng.randrange(640, 3840) if change.sql_type == "integer" else rng.choice(_LAST)
            )
    return out


def _children(live: Live, table: str, movie: int) -> tuple[tuple[str, int], ...]:
    if table != "movies":
        return ()
    return tuple(
        (child, cid)
        for child in ("productions", "talent")
        for cid, owner in sorted(live.rows(child).items())
        if owner == movie
    )


def _art_url(movie_id: object, locale: str, version: int) -> str:
    return f"https://art.example.com/{movie_id}/{locale}/v{version}.jpg"


def due_schema_change(elapsed_s: float, every_s: float, done: frozenset[str]) -> AddColumn | None:
    """The schema change due after ``elapsed_s`` seconds of generating, one per ``every_s``
    (the first after one interval; ``every_s`` 0: never), skipping those in ``done``
    (``<table>.<column>`` already in the tables); None when none is due."""
    if every_s <= 0:
        return None
    due = int(elapsed_s // every_s)
    pending = [c for c in SCHEMA_CHANGES if c.name not in done]
    applied = len(SCHEMA_CHANGES) - len(pending)
    return pending[0] if pending and due > applied else None
