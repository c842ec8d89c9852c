"""Synthetic heartbeats, the pure parts: the record format every hop recognises, the figures,
the declaration and the connector's command line."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from datamesh import heartbeat
from datamesh.cdc.config import ConnectorConfig, from_args, parse_heartbeats, to_args
from datamesh.cdc.errors import SourceConfigError
from datamesh.errors import SpecError
from datamesh.heartbeat import Arrival, Beat
from datamesh.specs import load_products
from mesh_assets import DOMAINS_DIR

BEAT = Beat("studio.public.movies", 7, "u", 1_700_000_000_123)


def test_a_heartbeat_record_round_trips() -> None:
    value = heartbeat.encode(BEAT)
    assert heartbeat.decode(value) == BEAT
    assert heartbeat.is_heartbeat(value)
    assert heartbeat.is_heartbeat(heartbeat.key(BEAT.source))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(None, False, id="tombstone"),
        pytest.param(b"", False, id="empty"),
        pytest.param(b"\x00\x00\x00\x00\x01\x02", False, id="confluent frame"),
        pytest.param(heartbeat.MARKER[:-1], False, id="marker cut short"),
        pytest.param(heartbeat.MARKER + b"{}", True, id="marker"),
    ],
)
def test_is_heartbeat(data: bytes | None, expected: bool) -> None:
    assert heartbeat.is_heartbeat(data) is expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\x00\x00\x00\x00\x01", id="real record"),
        pytest.param(heartbeat.MARKER + b"not json", id="not json"),
        pytest.param(heartbeat.MARKER + b'{"source": "s"}', id="fields missing"),
        pytest.param(heartbeat.MARKER + b"[1]", id="not an object"),
    ],
)
def test_decode_gives_none_for_anything_but_a_heartbeat(value: bytes) -> None:
    assert heartbeat.decode(value) is None


def test_the_wal_message_becomes_a_beat_stamped_with_its_commit() -> None:
    text = heartbeat.message("d.public.t", 4)
    assert heartbeat.from_message(text.encode(), 99) == Beat("d.public.t", 4, "u", 99)
    with pytest.raises(ValueError):
        heartbeat.from_message(b"[]", 1)


@pytest.mark.parametrize(("seq", "op"), [(0, "c"), (1, "u"), (2, "d"), (3, "c"), (302, "d")])
def test_the_synthetic_row_is_inserted_updated_deleted_in_turn(seq: int, op: str) -> None:
    assert heartbeat.op_for(seq) == op


@pytest.mark.parametrize(
    ("sample", "q", "expected"),
    [
        ((), 0.99, None),
        ((5,), 0.5, 5),
        ((3, 1, 2), 0.5, 2),
        (tuple(range(1, 101)), 0.99, 99),
        (tuple(range(1, 101)), 0.5, 50),
        ((1, 1000), 0.99, 1000),
    ],
)
def test_percentile_is_the_nearest_rank(sample: tuple[int, ...], q: float, expected: int) -> None:
    assert heartbeat.percentile(sample, q) == expected


def _at(seq: int, commit: int, arrived: int, source: str = "s") -> Arrival:
    return Arrival(Beat(source, seq, heartbeat.op_for(seq), commit), arrived)


HOPS = [
    pytest.param([_at(1, 100, 130), _at(2, 200, 210)], None, (2, 10, 30, 10, 30, 200),
                 id="first hop: its hop latency is end to end"),
    pytest.param([_at(1, 100, 180), _at(2, 200, 300)], [_at(1, 100, 130), _at(2, 200, 210)],
                 (2, 80, 100, 50, 90, 200), id="a later hop: from the arrival before"),
    pytest.param([_at(1, 100, 180), _at(3, 300, 350)], [_at(1, 100, 130)],
                 (2, 50, 80, 50, 50, 300), id="a beat not seen before counts end to end only"),
    pytest.param([_at(1, 100, 180, "a")], [_at(1, 100, 130, "b")],
                 (1, 80, 80, None, None, 100), id="matched by source and seq"),
    pytest.param([_at(1, 0, 180)], None, (1, None, None, None, None, None),
                 id="an unstamped beat has no latency"),
    pytest.param([], [], (0, None, None, None, None, None), id="nothing arrived"),
]  # fmt: skip


@pytest.mark.parametrize(("here", "before", "figures"), HOPS)
def test_hop_latency(
    here: list[Arrival], before: list[Arrival] | None, figures: tuple[int | None, ...]
) -> None:
    got = heartbeat.hop_latency(here, before)
    assert (
        got.samples,
        got.e2e_p50_ms,
        got.e2e_p99_ms,
        got.hop_p50_ms,
        got.hop_p99_ms,
        got.newest_commit_ms,
    ) == figures


def test_observation_metadata_names_the_figures() -> None:
    meta = heartbeat.hop_latency([_at(1, 100, 130)], None).metadata()
    assert meta["heartbeat_latency_ms_p99"] == 30
    assert meta["heartbeat_hop_latency_ms_p50"] == 30
    assert heartbeat.hop_latency([], None).metadata()["heartbeat_latency_ms_p99"] == -1


def _with_heartbeat(root: Path) -> Path:
    path = root / "studio" / "products.yaml"
    text = path.read_text()
    old = "    slo: {freshness: 5m, max_lag: 10000}\n"
    assert old in text
    path.write_text(text.replace(old, old + "    heartbeat: {every: 10s}\n", 1))
    return path


def test_a_cdc_heartbeat_is_declared_and_reaches_everything_downstream(
    domains_copy: Callable[[], Path],
) -> None:
    root = domains_copy()
    _with_heartbeat(root)
    by_id = {p.id: p for p in load_products(root)}
    assert by_id["studio.movies"].heartbeat == timedelta(seconds=10)
    assert by_id["studio.productions"].heartbeat is None
    beating = {pid for pid in by_id if heartbeat.sources(pid, by_id)}
    # movies and everything that reads it, directly or not (across domains too)
    assert {"studio.movies", "studio.movie_catalog", "content.localized_titles"} <= beating
    assert "studio.productions" not in beating
    assert heartbeat.sources("content.localized_titles", by_id) == ("studio.public.movies",)


@pytest.mark.parametrize(
    ("old", "new", "field", "problem", "fix"),
    [
        pytest.param("heartbeat: {every: 10s}", "heartbeat: {every: 0s}",
                     r"products\[0\]\.heartbeat\.every", "between 1s and 1h", "",
                     id="too often"),
        pytest.param("heartbeat: {every: 10s}", "heartbeat: {every: 2h}",
                     r"products\[0\]\.heartbeat\.every", "between 1s and 1h", "", id="too rare"),
        pytest.param("heartbeat: {every: 10s}", "heartbeat: {every: soon}",
                     r"products\[0\]\.heartbeat\.every", "soon", "", id="not a duration"),
        pytest.param("heartbeat: {every: 10s}", "heartbeat: {rate: 10s}",
                     r"products\[0\]\.heartbeat\.every", "required", "add `every:`",
                     id="every missing"),
    ],
)  # fmt: skip
def test_a_bad_heartbeat_names_file_field_and_problem(
    domains_copy: Callable[[], Path], old: str, new: str, field: str, problem: str, fix: str
) -> None:
    root = domains_copy()
    path = _with_heartbeat(root)
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_products(root)
    err = info.value
    assert err.file == str(path)
    assert re.search(field, err.field), err.field
    assert problem in err.problem, err.problem
    assert fix in (err.fix or ""), err.fix
    assert err.line is not None


def test_a_heartbeat_on_a_processor_is_refused_with_the_fix(
    domains_copy: Callable[[], Path],
) -> None:
    root = domains_copy()
    path = root / "studio" / "products.yaml"
    text = path.read_text()
    old = "    slo: {freshness: 10m}\n"
    assert old in text
    path.write_text(text.replace(old, old + "    heartbeat: {every: 10s}\n", 1))
    with pytest.raises(SpecError) as info:
        load_products(root)
    err = info.value
    assert err.file == str(path)
    assert err.field.endswith(".heartbeat"), err.field
    assert "from the cdc products it reads" in err.problem
    assert "declare `heartbeat: {every: 10s}` on the cdc product" in (err.fix or "")


BASE = ConnectorConfig("dbname=x", "db", ("public.a", "public.b"), "d", "k:1", "http://r", "s", "s")


def test_heartbeats_survive_the_command_line() -> None:
    cfg = dataclasses.replace(BASE, heartbeats=(("public.a", 10.0), ("public.b", 2.5)))
    assert from_args(to_args(cfg)) == cfg
    assert from_args(to_args(BASE)).heartbeats == ()


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param([], (), id="none"),
        pytest.param(["public.b=2", "public.a=10"], (("public.a", 10.0), ("public.b", 2.0)),
                     id="sorted"),
        pytest.param(["public.c=10"], None, id="a table not captured"),
        pytest.param(["public.a=0.5"], None, id="too often"),
        pytest.param(["public.a"], None, id="no interval"),
        pytest.param(["public.a=ten"], None, id="not a number"),
    ],
)  # fmt: skip
def test_parse_heartbeats(items: list[str], expected: tuple[tuple[str, float], ...] | None) -> None:
    if expected is None:
        with pytest.raises(SourceConfigError, match=r"--heartbeat public\.movies=10"):
            parse_heartbeats(items, BASE.tables)
    else:
        assert parse_heartbeats(items, BASE.tables) == expected


def test_demo_declarations_still_load() -> None:
    assert load_products(DOMAINS_DIR)
