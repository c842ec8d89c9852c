"""Search over data products: an inverted index built once, ranked look-ups against it.

``index(products)`` tokenizes every product once (lower case, split on non-alphanumerics, no
stemming) into postings ``token -> {product: hits}``; ``search(index, query, limit)`` only
reads postings, so a query costs its postings, not the number of products.

Ranking: results matching more distinct query words come first (multi-word queries are
AND-ish); then the sum, over matched words, of the strongest place each matched:
exact id/name (the whole query or one of its words) > name token > field name >
owner/domain/tag (incl. access, tier, kind) > description, schema and field docs.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from datamesh.avro_schema import columns
from datamesh.catalog import facts
from datamesh.specs.product import DataProduct
from datamesh.specs.sink_layout import effective_schema

EXACT, NAME, FIELD, META, TEXT = 1000, 100, 30, 10, 3
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric runs of ``text`` (``movie_id`` -> ``movie``, ``id``)."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Hit:
    """Where a token occurs in one product, and how much that place weighs."""

    weight: int
    where: str


@dataclass(frozen=True)
class Index:
    """Products (and their ids) with postings ``token -> {product position: hits, strongest first}``
    and ``exact`` (lower-case id or name -> product positions)."""

    products: tuple[DataProduct, ...]
    ids: tuple[str, ...]
    postings: Mapping[str, Mapping[int, Sequence[Hit]]]
    exact: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Result:
    """One ranked product: identity, where its data lives, SLO, health and why it matched.

    ``health`` is ``unknown`` here; ``mesh catalog`` fills it in from :mod:`.health`.
    """

    id: str
    kind: str
    owners: tuple[str, ...]
    access: str
    tier: int
    topic: str | None
    table: str | None
    freshness: timedelta | None
    matched_words: int
    score: int
    matched: tuple[str, ...]
    health: str = facts.HEALTH_UNKNOWN

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object of a result (``freshness_s`` in seconds or null)."""
        seconds = int(self.freshness.total_seconds()) if self.freshness else None
        return {
            "id": self.id,
            "kind": self.kind,
            "owners": list(self.owners),
            "access": self.access,
            "tier": self.tier,
            "topic": self.topic,
            "table": self.table,
            "freshness_s": seconds,
            "health": self.health,
            "score": self.score,
            "matched_words": self.matched_words,
            "matched": list(self.matched),
        }


def index(products: Sequence[DataProduct]) -> Index:
    """Tokenize every product once into an :class:`Index`."""
    by_id = {p.id: p for p in products}
    postings: dict[str, dict[int, list[Hit]]] = {}
    exact: dict[str, list[int]] = defaultdict(list)
    for position, product in enumerate(products):
        for name in {product.id.lower(), product.name.lower()}:
            exact[name].append(position)
        for token, hits in _hits(product, by_id).items():
            postings.setdefault(token, {})[position] = hits
    ids = tuple(p.id for p in products)
    return Index(tuple(products), ids, postings, {k: tuple(v) for k, v in exact.items()})


def _hits(p: DataProduct, by_id: Mapping[str, DataProduct]) -> dict[str, list[Hit]]:
    """Token -> the places of ``p`` it occurs in, strongest first."""
    found: dict[str, list[Hit]] = {}
    for text, hit in _documents(p, by_id):
        for token in set(tokens(text)):
            found.setdefault(token, []).append(hit)
    return found


def _documents(p: DataProduct, by_id: Mapping[str, DataProduct]) -> Iterator[tuple[str, Hit]]:
    """Every searchable text of a product with the hit it scores, strongest places first (so
    each posting's hits come out sorted without a sort)."""
    schema = effective_schema(p, by_id) or {}
    fields = columns(schema)
    yield p.name, Hit(NAME, "name")
    for column in fields:
        yield column.name, Hit(FIELD, f"field {column.name}")
    yield p.domain, Hit(META, f"domain {p.domain}")
    for owner in p.owners:
        yield owner, Hit(META, f"owner {owner}")
    for key, value in {**p.tags, "access": p.access, "tier": str(p.tier), "kind": p.kind}.items():
        yield f"{key} {value}", Hit(META, f"tag {key}={value}")
    yield p.description, Hit(TEXT, "description")
    yield str(schema.get("doc", "")), Hit(TEXT, "schema doc")
    for column in fields:
        yield column.doc, Hit(TEXT, f"doc of {column.name}")


@dataclass
class _Score:
    """One candidate's matched words, score and hits (their reasons are read for the top only)."""

    words: int = 0
    score: int = 0
    hits: list[Sequence[Hit]] = field(default_factory=list)

    def add(self, hits: Sequence[Hit]) -> None:
        """One more query word matched; it counts with its strongest place."""
        self.words += 1
        self.score += hits[0].weight
        self.hits.append(hits)

    def boost(self, hit: Hit) -> None:
        """An exact id or name: it weighs, but it is not another matched word."""
        self.score += hit.weight
        self.hits.append([hit])

    def why(self) -> tuple[str, ...]:
        """Every place that matched, strongest first, each once."""
        best: dict[str, int] = {}
        for hit in (h for hits in self.hits for h in hits):
            best[hit.where] = max(hit.weight, best.get(hit.where, 0))
        return tuple(sorted(best, key=lambda where: -best[where]))


def search(idx: Index, query: str, limit: int = 10) -> list[Result]:
    """The ``limit`` best products for ``query``, best first (see the module's ranking)."""
    scores: dict[int, _Score] = defaultdict(_Score)
    for word in dict.fromkeys(tokens(query)):
        for position, hits in idx.postings.get(word, {}).items():
            scores[position].add(hits)
    for term in {query.strip().lower(), *query.lower().split()}:
        for position in idx.exact.get(term, ()):
            scores[position].boost(Hit(EXACT, f"exact {term}"))
    best = heapq.nsmallest(
        max(limit, 0),
        scores,
        key=lambda pos: (-scores[pos].words, -scores[pos].score, idx.ids[pos]),
    )
    return [_result(idx.products[pos], scores[pos]) for pos in best]


def _result(p: DataProduct, s: _Score) -> Result:
    return Result(
        id=p.id,
        kind=p.kind,
        owners=p.owners,
        access=p.access,
        tier=p.tier,
        topic=facts.topic(p),
        table=facts.table(p),
        freshness=p.slo.freshness,
        matched_words=s.words,
        score=s.score,
        matched=s.why(),
    )
