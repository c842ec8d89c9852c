"""Compare a source and a sink: chunk digests first, rows only where a chunk differs, then a
re-check of every differing key until it settles or is older than the grace (the pipeline's
freshness SLO).

Why a re-check and not positions: a source and a sink are never read at the same instant, and
changes are always in flight between them (1,000 changes/s keep some chunk of any table
differing). An upsert sink keeps one row per key and no LSN per row (a ``postgres_sink`` row is
what Flink's JDBC connector upserted; an Iceberg upsert table holds only the input's columns),
so the sink cannot say how old the row it holds is. What can be known is when the *audit* first
saw a key differ and whether the source row changed since. Hence the rule:

- a differing key is re-read on both sides every ``recheck_s`` seconds;
- it is **settled** (not a difference) as soon as both sides agree (its change arrived);
- when the source row changed between two reads, the key is in flight again: its clock restarts;
- it is **confirmed** when the source row stayed the same and the sink still differs for
  ``grace`` (the freshness SLO: a change the pipeline promises to deliver within it did not);
- a key still moving after ``3 * grace`` is reported as *unsettled* (a warning, not a failure).

An in-flight change therefore never fails an audit (it arrives within the SLO, or the source
keeps changing and the key stays *unsettled*, reported but not failed), and a real difference
fails it after at most ``grace`` — measured from when the audit saw it, so the audit lasts at
least ``grace`` when something is really wrong, and is as quick as the digests when not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from datamesh.audit.sides import Digest, KeyText, Progress, RawKey, Row, Side

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Difference:
    """A key the two sides disagree on: ``kind`` is ``missing`` (only in the source), ``extra``
    (only in the sink) or ``differs`` (with the names of the differing ``columns``)."""

    key: KeyText
    raw: RawKey
    kind: str
    columns: tuple[str, ...] = ()


@dataclass
class Comparison:
    """What a comparison found: confirmed differences, keys still in flight when it stopped,
    and the counts of the chunk pass."""

    differences: list[Difference] = field(default_factory=list)
    unsettled: list[Difference] = field(default_factory=list)
    settled: int = 0
    chunks: int = 0
    chunks_differing: int = 0
    rows_source: int = 0
    rows_sink: int = 0


def diff_rows(
    source: dict[KeyText, Row], sink: dict[KeyText, Row], names: Sequence[str]
) -> list[Difference]:
    """Pure: the keys on which two row sets disagree, in key-text order."""
    out = []
    for key in sorted(set(source) | set(sink)):
        a, b = source.get(key), sink.get(key)
        if a is not None and b is None:
            out.append(Difference(key, a.raw, "missing"))
        elif a is None and b is not None:
            out.append(Difference(key, b.raw, "extra"))
        elif a is not None and b is not None and a.texts != b.texts:
            cols = tuple(n for n, x, y in zip(names, a.texts, b.texts, strict=True) if x != y)
            out.append(Difference(key, a.raw, "differs", cols))
    return out


def differing_chunks(source: Sequence[Digest], sink: Sequence[Digest]) -> list[int]:
    """Pure: the indexes of chunks whose count or digest differ."""
    return [i for i, (a, b) in enumerate(zip(source, sink, strict=True)) if a != b]


def _order(d: Difference) -> tuple[object, ...]:
    """Key order: by raw value (ids numerically), text last resort for mixed types."""
    return tuple((0, v, "") if isinstance(v, int | float) else (1, 0, str(v)) for v in d.raw)


@dataclass
class _Watch:
    since: float
    source: tuple[str, ...] | None
    difference: Difference


def compare(
    source: Side,
    sink: Side,
    names: Sequence[str],
    grace_s: float,
    chunk_rows: int = 2_000,
    recheck_s: float = 2.0,
    progress: Progress | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Comparison:
    """Compare ``source`` and ``sink`` (columns ``names``, key first); see the module doc."""
    report = progress or (lambda _what, _done, _total: None)
    bounds = source.boundaries(chunk_rows)
    digests_source = source.digests(bounds, report)
    digests_sink = sink.digests(bounds, report)
    result = Comparison(
        chunks=len(bounds) + 1,
        rows_source=sum(d.count for d in digests_source),
        rows_sink=sum(d.count for d in digests_sink),
    )
    found: list[Difference] = []
    sources: dict[KeyText, Row] = {}
    chunks = differing_chunks(digests_source, digests_sink)
    result.chunks_differing = len(chunks)
    for done, index in enumerate(chunks):
        rows = source.chunk_rows(bounds, index)
        sources.update(rows)
        found += diff_rows(rows, sink.chunk_rows(bounds, index), names)
        report("rows", done + 1, len(chunks))
    now = clock()
    watching = {
        d.key: _Watch(now, sources[d.key].texts if d.key in sources else None, d) for d in found
    }
    return _settle(source, sink, names, watching, grace_s, recheck_s, clock, sleep, result)


def _settle(
    source: Side,
    sink: Side,
    names: Sequence[str],
    watching: dict[KeyText, _Watch],
    grace_s: float,
    recheck_s: float,
    clock: Clock,
    sleep: Sleep,
    result: Comparison,
) -> Comparison:
    initial = len(watching)
    give_up = clock() + 3 * grace_s  # a key the source keeps changing is never confirmed
    while watching:
        now = clock()
        oldest = min(w.since for w in watching.values())
        if now - oldest >= grace_s:
            stale = [k for k, w in watching.items() if now - w.since >= grace_s]
            result.differences += [watching.pop(k).difference for k in stale]
            continue
        if now >= give_up:
            result.unsettled = sorted((w.difference for w in watching.values()), key=_order)
            break
        sleep(min(recheck_s, grace_s - (now - oldest)))
        raws = [w.difference.raw for w in watching.values()]
        src, snk = source.rows_for(raws), sink.rows_for(raws)
        now = clock()
        for key in list(watching):
            watch = watching[key]
            diffs = diff_rows(
                {key: src[key]} if key in src else {}, {key: snk[key]} if key in snk else {}, names
            )
            diff = diffs[0] if diffs else None
            current = src[key].texts if key in src else None
            if diff is None:
                del watching[key]
            elif current != watch.source:  # the source moved: this key is in flight again
                watching[key] = _Watch(now, current, diff)
            else:
                watch.difference = diff
    result.differences.sort(key=_order)
    result.settled = initial - len(result.differences) - len(result.unsettled)
    return result
