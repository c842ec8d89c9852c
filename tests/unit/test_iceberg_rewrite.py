"""Which rows of a data file a batch's copy-on-write keeps: every row whose key the batch does
not touch, in order — for single and composite keys (pure pyarrow)."""

from __future__ import annotations

import random

import pyarrow as pa

from datamesh.sinks.iceberg_table import _without_keys


def test_single_key_rows_not_touched_stay_in_order() -> None:
    current = pa.table({"id": [5, 1, 9, 3], "v": ["a", "b", "c", "d"]})
    kept = _without_keys(current, pa.table({"id": [9, 1, 42]}), ["id"])
    assert kept.to_pylist() == [{"id": 5, "v": "a"}, {"id": 3, "v": "d"}]


def test_composite_key_rows_not_touched_stay_in_order() -> None:
    current = pa.table(
        {
            "movie_id": [1, 1, 2, 3, 2],
            "locale": ["en-US", "fr-FR", "en-US", "en-US", "fr-FR"],
            "title": ["a", "b", "c", "d", "e"],
        }
    )
    touched = pa.table({"movie_id": [1, 2], "locale": ["en-US", "de-DE"]})
    kept = _without_keys(current, touched, ["movie_id", "locale"])
    assert [r["title"] for r in kept.to_pylist()] == ["b", "c", "d", "e"]


def test_random_composite_keys_match_a_set_difference() -> None:
    rng = random.Random(4)
    keys = [(rng.randrange(50), rng.choice("abcde")) for _ in range(400)]
    keys = list(dict.fromkeys(keys))
    current = pa.table(
        {"k1": [k[0] for k in keys], "k2": [k[1] for k in keys], "n": list(range(len(keys)))}
    )
    gone = set(rng.sample(keys, 60)) | {(999, "z")}
    touched = pa.table({"k1": [k[0] for k in gone], "k2": [k[1] for k in gone]})
    kept = _without_keys(current, touched, ["k1", "k2"]).to_pylist()
    assert [(r["k1"], r["k2"]) for r in kept] == [k for k in keys if k not in gone]
