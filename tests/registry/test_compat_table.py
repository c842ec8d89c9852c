"""Compatibility verdicts per level: a table run through the HTTP API, plus unit tests of compat.

Each case: the registered history (oldest first), the subject's level, the new schema, the
expected verdict and, for refusals, a word the reason must contain. Verdicts follow the Avro
schema-resolution rules as the ``avro`` checker implements them (the same rules as Java's
``SchemaCompatibility``, which Confluent uses), with Confluent's meaning of each level.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from datamesh.registry import compat
from datamesh.registry.errors import RegistryError
from datamesh.registry.parsing import parse_schema

from .helpers import call, enum, field, record, register, set_level, subject_path


@dataclass(frozen=True)
class Case:
    name: str
    history: tuple[str, ...]
    level: str
    new: str
    compatible: bool
    reason: str = ""  # a fragment the refusal's reasons must contain


def rec(*fields: dict[str, Any], name: str = "Rec", **extra: Any) -> str:
    return record(*fields, name=name, **extra)


def one(type_: Any, **extra: Any) -> str:
    """A record with the single field ``f`` of ``type_``."""
    return rec(field("f", type_, **extra))


A = field("a", "int")
B = field("b", "string")
B_DEFAULT = field("b", "string", default="")
NESTED_1 = {"type": "record", "name": "Inner", "fields": [field("x", "int")]}
NESTED_2 = {"type": "record", "name": "Inner", "fields": [field("x", "int"), field("y", "int")]}
NESTED_2D = {
    "type": "record",
    "name": "Inner",
    "fields": [field("x", "int"), field("y", "int", default=0)],
}
NESTED_STR = {"type": "record", "name": "Inner", "fields": [field("x", "string")]}
TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
TS_MICROS = {"type": "long", "logicalType": "timestamp-micros"}
DEC_10_2 = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
DEC_12_4 = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 4}
DATE = {"type": "int", "logicalType": "date"}
MISSING = "READER_FIELD_MISSING_DEFAULT_VALUE"
MISMATCH = "TYPE_MISMATCH"

CASES = [
    # -- adding and removing fields --------------------------------------------------------
    Case("add-no-default/backward", (rec(A),), "BACKWARD", rec(A, B), False, MISSING),
    Case("add-no-default/forward", (rec(A),), "FORWARD", rec(A, B), True),
    Case("add-no-default/full", (rec(A),), "FULL", rec(A, B), False, MISSING),
    Case("add-default/backward", (rec(A),), "BACKWARD", rec(A, B_DEFAULT), True),
    Case("add-default/forward", (rec(A),), "FORWARD", rec(A, B_DEFAULT), True),
    Case("add-default/full", (rec(A),), "FULL", rec(A, B_DEFAULT), True),
    Case("remove-no-default/backward", (rec(A, B),), "BACKWARD", rec(A), True),
    Case("remove-no-default/forward", (rec(A, B),), "FORWARD", rec(A), False, MISSING),
    Case("remove-no-default/full", (rec(A, B),), "FULL", rec(A), False, "'b'"),
    Case("remove-default/forward", (rec(A, B_DEFAULT),), "FORWARD", rec(A), True),
    Case("remove-default/full", (rec(A, B_DEFAULT),), "FULL", rec(A), True),
    Case("none-allows-anything", (rec(A),), "NONE", one("boolean"), True),
    # -- primitive promotions ---------------------------------------------------------------
    Case("int-to-long/backward", (one("int"),), "BACKWARD", one("long"), True),
    Case("int-to-long/forward", (one("int"),), "FORWARD", one("long"), False, MISMATCH),
    Case("int-to-long/full", (one("int"),), "FULL", one("long"), False, "writer type: long"),
    Case("long-to-float/backward", (one("long"),), "BACKWARD", one("float"), True),
    Case("float-to-double/backward", (one("float"),), "BACKWARD", one("double"), True),
    Case("int-to-double/backward", (one("int"),), "BACKWARD", one("double"), True),
    Case("double-to-float/backward", (one("double"),), "BACKWARD", one("float"), False, MISMATCH),
    Case("long-to-int/backward", (one("long"),), "BACKWARD", one("int"), False, MISMATCH),
    Case("string-to-bytes/backward", (one("string"),), "BACKWARD", one("bytes"), True),
    Case("bytes-to-string/backward", (one("bytes"),), "BACKWARD", one("string"), True),
    Case("string-to-bytes/full", (one("string"),), "FULL", one("bytes"), True),
    Case("int-to-string/backward", (one("int"),), "BACKWARD", one("string"), False, MISMATCH),
    Case("int-to-string/none", (one("int"),), "NONE", one("string"), True),
    # -- enums -------------------------------------------------------------------------------
    Case(
        "enum-add-symbol/backward",
        (one(enum(["R", "G"])),),
        "BACKWARD",
        one(enum(["R", "G", "B"])),
        True,
    ),
    Case(
        "enum-add-symbol/forward",
        (one(enum(["R", "G"])),),
        "FORWARD",
        one(enum(["R", "G", "B"])),
        False,
        "MISSING_ENUM_SYMBOLS",
    ),
    Case(
        "enum-add-symbol/forward-old-has-default",
        (one(enum(["R", "G"], default="R")),),
        "FORWARD",
        one(enum(["R", "G", "B"], default="R")),
        True,
    ),
    Case(
        "enum-remove-symbol/backward",
        (one(enum(["R", "G", "B"])),),
        "BACKWARD",
        one(enum(["R", "G"])),
        False,
        "'B'",
    ),
    Case(
        "enum-remove-symbol/forward",
        (one(enum(["R", "G", "B"])),),
        "FORWARD",
        one(enum(["R", "G"])),
        True,
    ),
    Case(
        "enum-rename-type/backward",
        (one(enum(["R"])),),
        "BACKWARD",
        one(enum(["R"], name="Hue")),
        False,
        "NAME_MISMATCH",
    ),
    # -- unions ------------------------------------------------------------------------------
    Case(
        "union-widen/backward",
        (one(["null", "int"]),),
        "BACKWARD",
        one(["null", "int", "string"]),
        True,
    ),
    Case(
        "union-widen/forward",
        (one(["null", "int"]),),
        "FORWARD",
        one(["null", "int", "string"]),
        False,
        "MISSING_UNION_BRANCH",
    ),
    Case(
        "union-narrow/backward",
        (one(["null", "int", "string"]),),
        "BACKWARD",
        one(["null", "int"]),
        False,
        "STRING",
    ),
    Case(
        "union-narrow/forward",
        (one(["null", "int", "string"]),),
        "FORWARD",
        one(["null", "int"]),
        True,
    ),
    Case("make-nullable/backward", (one("int"),), "BACKWARD", one(["null", "int"]), True),
    Case(
        "make-nullable/forward",
        (one("int"),),
        "FORWARD",
        one(["null", "int"]),
        False,
        "writer type: null",
    ),
    Case(
        "union-branch-promotion/backward",
        (one(["null", "int"]),),
        "BACKWARD",
        one(["null", "long"]),
        True,
    ),
    # -- nested records, arrays, maps, fixed --------------------------------------------------
    Case(
        "nested-add-no-default/backward",
        (one(NESTED_1),),
        "BACKWARD",
        one(NESTED_2),
        False,
        "/fields/0/type/fields/1",
    ),
    Case("nested-add-default/backward", (one(NESTED_1),), "BACKWARD", one(NESTED_2D), True),
    Case("nested-add-no-default/forward", (one(NESTED_1),), "FORWARD", one(NESTED_2), True),
    Case(
        "nested-type-change/backward",
        (one(NESTED_1),),
        "BACKWARD",
        one(NESTED_STR),
        False,
        "reader type: string not compatible with writer type: int",
    ),
    Case(
        "array-items-promotion/backward",
        (one({"type": "array", "items": "int"}),),
        "BACKWARD",
        one({"type": "array", "items": "long"}),
        True,
    ),
    Case(
        "map-values-narrowing/backward",
        (one({"type": "map", "values": "long"}),),
        "BACKWARD",
        one({"type": "map", "values": "int"}),
        False,
        MISMATCH,
    ),
    Case(
        "fixed-size-change/backward",
        (one({"type": "fixed", "name": "F", "size": 16}),),
        "BACKWARD",
        one({"type": "fixed", "name": "F", "size": 8}),
        False,
        "FIXED_SIZE_MISMATCH",
    ),
    # -- renames and aliases -------------------------------------------------------------------
    Case(
        "rename-field-no-alias/backward",
        (rec(A),),
        "BACKWARD",
        rec(field("z", "int")),
        False,
        "'z'",
    ),
    Case(
        "rename-field-alias/backward",
        (rec(A),),
        "BACKWARD",
        rec(field("z", "int", aliases=["a"])),
        True,
    ),
    # The old reader has no alias for the new name, so it misses "a" when reading new data.
    Case(
        "rename-field-alias/forward",
        (rec(A),),
        "FORWARD",
        rec(field("z", "int", aliases=["a"])),
        False,
        "'a'",
    ),
    Case(
        "rename-record-no-alias/backward",
        (rec(A),),
        "BACKWARD",
        rec(A, name="Renamed"),
        False,
        "NAME_MISMATCH",
    ),
    Case(
        "rename-record-alias/backward",
        (rec(A),),
        "BACKWARD",
        rec(A, name="Renamed", aliases=["Rec"]),
        True,
    ),
    # Names are compared unqualified (as in Java's SchemaCompatibility), so a namespace move is
    # no break.
    Case(
        "change-namespace/backward",
        (rec(A, namespace="old.ns"),),
        "BACKWARD",
        rec(A, namespace="new.ns"),
        True,
    ),
    # -- logical types: resolution looks at the underlying type only -------------------------
    Case("add-timestamp-millis/backward", (one("long"),), "BACKWARD", one(TS_MILLIS), True),
    Case("drop-timestamp-millis/full", (one(TS_MILLIS),), "FULL", one("long"), True),
    Case("millis-to-micros/full", (one(TS_MILLIS),), "FULL", one(TS_MICROS), True),
    Case("decimal-scale-change/full", (one(DEC_10_2),), "FULL", one(DEC_12_4), True),
    Case("date-to-timestamp/backward", (one(DATE),), "BACKWARD", one(TS_MILLIS), True),
    Case("timestamp-to-date/backward", (one(TS_MILLIS),), "BACKWARD", one(DATE), False, MISMATCH),
    Case("decimal-to-string/backward", (one(DEC_10_2),), "BACKWARD", one("string"), True),
    # -- transitive versus latest-only, three versions ---------------------------------------
    # v1 {a}, v2 {a, b=""}, new {a, b}: new reads v2 (b present) but not v1 (b missing, no
    # default), so only the transitive level notices.
    Case("drop-default/backward", (rec(A), rec(A, B_DEFAULT)), "BACKWARD", rec(A, B), True),
    Case(
        "drop-default/backward-transitive",
        (rec(A), rec(A, B_DEFAULT)),
        "BACKWARD_TRANSITIVE",
        rec(A, B),
        False,
        "version 1",
    ),
    Case("drop-default/full", (rec(A), rec(A, B_DEFAULT)), "FULL", rec(A, B), True),
    Case(
        "drop-default/full-transitive",
        (rec(A), rec(A, B_DEFAULT)),
        "FULL_TRANSITIVE",
        rec(A, B),
        False,
        "version 1",
    ),
    # v1 {a, b}, v2 {a, b=""}, new {a}: v2 as reader defaults b, v1 as reader cannot.
    Case("remove-field/forward", (rec(A, B), rec(A, B_DEFAULT)), "FORWARD", rec(A), True),
    Case(
        "remove-field/forward-transitive",
        (rec(A, B), rec(A, B_DEFAULT)),
        "FORWARD_TRANSITIVE",
        rec(A),
        False,
        "version 1 cannot read",
    ),
    # int -> long -> float: each step and the whole chain are promotions.
    Case(
        "promotion-chain/backward-transitive",
        (one("int"), one("long")),
        "BACKWARD_TRANSITIVE",
        one("float"),
        True,
    ),
    # v1 {a:int}, v2 {a:int, b=""}, new {a:string, b=""} breaks both the latest and v1.
    Case(
        "type-change/backward-transitive",
        (rec(A), rec(A, B_DEFAULT)),
        "BACKWARD_TRANSITIVE",
        rec(field("a", "string"), B_DEFAULT),
        False,
        "version 2",
    ),
    Case("none-transitive-history", (rec(A), rec(A, B_DEFAULT)), "NONE", one("bytes"), True),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_over_http(registry_url: str, new_subject: Callable[[str], str], case: Case) -> None:
    subject = new_subject("compat-table")
    set_level(registry_url, subject, "NONE")  # build the history freely
    for version in case.history:
        assert register(registry_url, subject, version).status_code == 200
    set_level(registry_url, subject, case.level)
    check = call(
        "POST",
        registry_url,
        f"/compatibility/subjects/{subject_path(subject)}/versions",
        {"schema": case.new},
        verbose="true",
    ).json()
    response = register(registry_url, subject, case.new)
    versions = call("GET", registry_url, f"/subjects/{subject_path(subject)}/versions").json()
    if case.compatible:
        assert response.status_code == 200, response.text
        assert check == {"is_compatible": True, "messages": []}
        assert len(versions) == len(case.history) + 1
    else:
        assert response.status_code == 409, response.text
        assert response.json()["error_code"] == 409
        assert case.reason in response.json()["message"]
        assert check["is_compatible"] is False
        assert any(case.reason in message for message in check["messages"])
        assert len(versions) == len(case.history)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_in_process(case: Case) -> None:
    previous = [compat.PreviousVersion(i + 1, _parse(text)) for i, text in enumerate(case.history)]
    reasons = compat.check(_parse(case.new), previous, case.level)
    assert (not reasons) == case.compatible, reasons
    if not case.compatible:
        assert case.reason in reasons[0], reasons  # newest version and backward come first


def _parse(text: str) -> avro.schema.Schema:
    return parse_schema(text).avro


# -- unit tests of compat.py --------------------------------------------------------------


@pytest.mark.parametrize("level", [*compat.LEVELS, "backward", "Full_Transitive"])
def test_normalize_level_accepts_levels_in_any_case(level: str) -> None:
    assert compat.normalize_level(level) == level.upper()


@pytest.mark.parametrize("level", ["", "BACK", "FULL_TRANSITIVE ", None, 3, ["FULL"]])
def test_normalize_level_rejects_others(level: object) -> None:
    with pytest.raises(RegistryError) as caught:
        compat.normalize_level(level)
    assert (caught.value.http_status, caught.value.error_code) == (422, 42203)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("BACKWARD", (True, False)),
        ("BACKWARD_TRANSITIVE", (True, False)),
        ("FORWARD", (False, True)),
        ("FORWARD_TRANSITIVE", (False, True)),
        ("FULL", (True, True)),
        ("FULL_TRANSITIVE", (True, True)),
        ("NONE", (False, False)),
    ],
)
def test_directions(level: str, expected: tuple[bool, bool]) -> None:
    assert compat.directions(level) == expected
    assert compat.is_transitive(level) == level.endswith("_TRANSITIVE")


def test_no_history_is_always_compatible() -> None:
    assert compat.check(_parse(one("int")), [], "FULL_TRANSITIVE") == []


def test_non_transitive_checks_only_the_latest() -> None:
    history = [
        compat.PreviousVersion(1, _parse(one("string"))),
        compat.PreviousVersion(2, _parse(one("int"))),
    ]
    assert compat.check(_parse(one("long")), history, "BACKWARD") == []
    reasons = compat.check(_parse(one("long")), history, "BACKWARD_TRANSITIVE")
    assert len(reasons) == 1 and "version 1" in reasons[0]


def test_describe_single_problem_is_exact() -> None:
    result = compat.check_pair(_parse(rec(A, B)), _parse(rec(A)))
    assert result.compatibility is SchemaCompatibilityType.incompatible
    assert compat.describe(result, "ctx") == [
        f"ctx: {MISSING} at /fields/1: reader field 'b' has no default value and is missing "
        "from the writer"
    ]


def test_describe_several_problems() -> None:
    reader = rec(field("a", "string"), B, field("c", enum(["X"])))
    writer = rec(A, field("c", enum(["X", "Y"])))
    reasons = compat.describe(compat.check_pair(_parse(reader), _parse(writer)), "ctx")
    assert (
        f"ctx: {MISSING}: reader field 'b' has no default value and is missing from the "
        "writer" in reasons
    )
    assert "ctx: TYPE_MISMATCH: reader type: string not compatible with writer type: int" in reasons
    assert "ctx: MISSING_ENUM_SYMBOLS: reader enum lacks writer symbols {'Y'}" in reasons
    assert (
        reasons[-1] == "ctx: incompatible locations: /fields/0/type, /fields/1, "
        "/fields/2/type/symbols"
    )


def test_describe_compatible_is_empty() -> None:
    assert compat.describe(compat.check_pair(_parse(one("long")), _parse(one("int"))), "x") == []


def test_forward_reason_names_the_old_version_as_reader() -> None:
    history = [compat.PreviousVersion(3, _parse(rec(A, B)))]
    (reason,) = compat.check(_parse(rec(A)), history, "FORWARD")
    assert reason.startswith("version 3 cannot read data written by the new schema (FORWARD)")


def test_table_schemas_are_valid_json() -> None:
    for case in CASES:
        for text in (*case.history, case.new):
            json.loads(text)


def test_checker_recursion_becomes_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RecursionError

    monkeypatch.setattr(ReaderWriterCompatibilityChecker, "get_compatibility", explode)
    reasons = compat.check(
        _parse(one("long")), [compat.PreviousVersion(1, _parse(one("int")))], "BACKWARD"
    )
    assert reasons and "too deeply nested" in reasons[0]
