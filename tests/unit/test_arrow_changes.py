"""The columnar sink path gives the same tables as the record-by-record path, on random batches
of CDC envelopes (creates, updates, deletes, repeated keys, nulls, two schema versions) and of
upsert-topic records with tombstones."""

from __future__ import annotations

import io
import random
import struct
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow

from datamesh.sinks import arrow_changes, changes
from datamesh.sinks.arrow_changes import NotColumnar
from datamesh.sinks.avro_blocks import header_schema
from datamesh.sinks.reader import Raw
from datamesh.sinks.table_schema import iceberg_schema, value_fields

VALUE_V1: dict[str, Any] = {
    "type": "record",
    "name": "Value",
    "namespace": "t.public.m",
    "fields": [
        {"name": "id", "type": ["null", "long"], "default": None},
        {"name": "title", "type": ["null", "string"], "default": None},
        {
            "name": "budget",
            "type": [
                "null",
                {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
            ],
            "default": None,
        },
        {
            "name": "at",
            "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
            "default": None,
        },
        {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}], "default": None},
        {
            "name": "tags",
            "type": ["null", {"type": "array", "items": ["null", "string"]}],
            "default": None,
        },
    ],
}
VALUE_V2 = {
    **VALUE_V1,
    "fields": [
        *VALUE_V1["fields"],
        {"name": "region", "type": ["null", "string"], "default": None},
    ],
}
SOURCE = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "ts_ms", "type": "long"},
        {"name": "snapshot", "type": "string", "default": "false"},
        {"name": "lsn", "type": ["null", "long"], "default": None},
    ],
}
KEY = {
    "type": "record",
    "name": "Key",
    "namespace": "t.public.m",
    "fields": [{"name": "id", "type": "long"}],
}


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": "t.public.m",
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": SOURCE},
            {"name": "op", "type": "string"},
        ],
    }


SCHEMAS = {1: KEY, 2: envelope(VALUE_V1), 3: envelope(VALUE_V2), 4: VALUE_V1, 5: VALUE_V2}


def frame(schema_id: int, datum: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMAS[schema_id]), datum)
    return struct.pack(">bI", 0, schema_id) + out.getvalue()


def row(rng: random.Random, key: int, v2: bool) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": key,
        "title": rng.choice([None, "", "Heat", "Dune ünïcode"]),
        "budget": rng.choice([None, Decimal("12.50"), Decimal("-99999.99")]),
        "at": rng.choice([None, datetime(2024, 5, 1, 12, 30, tzinfo=UTC)]),
        "day": rng.choice([None, date(2023, 1, 2)]),
        "tags": rng.choice([None, [], ["a", None, "b"]]),
    }
    if v2:
        r["region"] = rng.choice([None, "emea"])
    return r


def cdc_batch(seed: int) -> list[Raw]:
    rng = random.Random(seed)
    raws: list[Raw] = []
    live: dict[int, dict[str, Any]] = {}
    for offset in range(400):
        key = rng.randrange(40)
        v2 = offset > 200
        ts = 1_700_000_000_000 + offset
        source = {"ts_ms": ts, "snapshot": "false", "lsn": 1000 + offset}
        if key in live and rng.random() < 0.3:
            value = {"before": live.pop(key), "after": None, "source": source, "op": "d"}
            raws.append(Raw(0, offset, ts + 5, frame(1, {"id": key}), frame(3 if v2 else 2, value)))
            raws.append(Raw(0, offset + 10_000, ts + 6, frame(1, {"id": key}), None))  # tombstone
            continue
        image = row(rng, key, v2)
        op = "u" if key in live else rng.choice(["c", "r"])
        value = {"before": live.get(key), "after": image, "source": source, "op": op}
        live[key] = image
        raws.append(Raw(0, offset, ts + 5, frame(1, {"id": key}), frame(3 if v2 else 2, value)))
    return raws


def plain_batch(seed: int) -> list[Raw]:
    rng = random.Random(seed)
    raws = []
    for offset in range(300):
        key = rng.randrange(30)
        if rng.random() < 0.2:
            raws.append(Raw(offset % 2, offset, 5_000 + offset, frame(1, {"id": key}), None))
        else:
            v2 = offset > 150
            value = frame(5 if v2 else 4, row(rng, key, v2))
            raws.append(Raw(offset % 2, offset, 5_000 + offset, frame(1, {"id": key}), value))
    return raws


def records(raws: list[Raw], envelope: bool) -> list[changes.Record]:
    out = []
    for r in raws:
        key = unframe(r.key, KEY) if r.key else None
        value = None
        if r.value is not None:
            sid = struct.unpack(">bI", r.value[:5])[1]
            value = unframe(r.value, SCHEMAS[sid])
        out.append(changes.Record(r.partition, r.offset, r.timestamp_ms, key, value))
    return out


def unframe(data: bytes, schema: dict[str, Any]) -> dict[str, Any]:
    """The record in the Confluent-framed ``data`` (magic byte, schema id, Avro body)."""
    datum = fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema), None)
    assert isinstance(datum, dict)
    return datum


def arrow_schema(mode: str) -> pa.Schema:
    return schema_to_pyarrow(
        iceberg_schema(value_fields(SCHEMAS[3]), ("id",), mode), include_field_ids=False
    )


def by_key(table: pa.Table) -> dict[Any, dict[str, Any]]:
    return {r["id"]: r for r in table.to_pylist()}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("envelope", [True, False])
def test_upsert_tables_match_the_record_path(seed: int, envelope: bool) -> None:
    raws = cdc_batch(seed) if envelope else plain_batch(seed)
    schema = arrow_schema("upsert")
    fast = arrow_changes.upsert_tables(
        arrow_changes.decode(raws, SCHEMAS.__getitem__, envelope), ("id",), schema
    )
    slow = changes.fold_upserts(records(raws, envelope), ("id",), envelope)
    expected_rows = pa.Table.from_pylist(slow.upserts, schema=schema)
    assert by_key(fast.upserts) == by_key(expected_rows)
    assert sorted(fast.touched["id"].to_pylist()) == sorted(k[0] for k in slow.rows)
    assert fast.deleted == len(slow.deletes)
    assert fast.newest_event_ms == slow.newest_event_ms


@pytest.mark.parametrize("seed", range(3))
def test_changelog_tables_match_the_record_path(seed: int) -> None:
    raws = cdc_batch(seed)
    schema = arrow_schema("append")
    fast, newest = arrow_changes.changelog_table(
        arrow_changes.decode(raws, SCHEMAS.__getitem__, True), schema
    )
    rows, slow_newest = changes.changelog_rows(records(raws, True), ("id",), True)
    assert fast.to_pylist() == pa.Table.from_pylist(rows, schema=schema).to_pylist()
    assert newest == slow_newest


def test_unusual_batches_take_the_record_path() -> None:
    good = cdc_batch(0)[:3]
    with pytest.raises(NotColumnar):
        arrow_changes.decode(
            [*good, Raw(0, 99, None, None, b"\x07junk")], SCHEMAS.__getitem__, True
        )
    truncate = {
        "before": None,
        "after": None,
        "source": {"ts_ms": 1, "snapshot": "false", "lsn": 1},
        "op": "t",
    }
    with pytest.raises(NotColumnar):
        arrow_changes.decode(
            [*good, Raw(0, 99, None, None, frame(2, truncate))], SCHEMAS.__getitem__, True
        )
    with pytest.raises(NotColumnar):  # a block polars cannot read: a corrupt body
        arrow_changes.decode(
            [Raw(0, 1, None, None, frame(2, truncate)[:7])], SCHEMAS.__getitem__, True
        )


def test_header_schema_inlines_named_types_and_drops_defaults() -> None:
    out = header_schema(SCHEMAS[2])
    after = next(f for f in out["fields"] if f["name"] == "after")
    assert after["type"][1]["type"] == "record" and after["type"][1]["name"] == "Value"
    assert "default" not in str(out)


@pytest.mark.parametrize("chunk", [1, 7, 150, 10_000])
def test_a_batch_decoded_in_chunks_equals_the_batch_decoded_whole(chunk: int) -> None:
    raws = cdc_batch(3)
    pipeline = arrow_changes.Pipeline(SCHEMAS.__getitem__, True)
    for i in range(0, len(raws), chunk):
        pipeline.feed(raws[i : i + chunk])
    whole = arrow_changes.decode(raws, SCHEMAS.__getitem__, True)
    assert pipeline.result().to_pylist() == whole.to_pylist()


def test_a_bad_chunk_fails_the_pipeline() -> None:
    pipeline = arrow_changes.Pipeline(SCHEMAS.__getitem__, True)
    pipeline.feed(cdc_batch(0)[:5])
    pipeline.feed([Raw(0, 99, None, None, b"\x07junk")])
    with pytest.raises(NotColumnar):
        pipeline.result()


def test_a_tombstone_without_a_framed_key_is_a_bad_record() -> None:
    from datamesh.sinks.iceberg_sink import _record
    from datamesh.sinks.records import Decoder, UndecodableRecord

    with pytest.raises(UndecodableRecord, match="tombstone without a framed Avro key"):
        _record(Decoder(SCHEMAS.__getitem__), Raw(0, 5, None, b"plain-key", None), False)
    kept = _record(Decoder(SCHEMAS.__getitem__), Raw(0, 6, None, frame(1, {"id": 3}), None), False)
    assert kept.key == {"id": 3} and kept.value is None
