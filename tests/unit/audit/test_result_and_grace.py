"""What an audit reports (counts and the first N keys of each kind) and the grace it allows
(the sink's freshness SLO, else the nearest upstream's, else 15 minutes); `mesh validate`
prints one audit line per sink."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from datamesh import cli
from datamesh.audit.compare import Comparison, Difference
from datamesh.audit.result import AuditResult
from datamesh.audit.target import DEFAULT_GRACE, grace
from datamesh.specs.product import Slo
from tests.unit.audit.test_auditability import MOVIES, _sink


def _result(
    differences: list[Difference], unsettled: list[Difference] | None = None
) -> AuditResult:
    comparison = Comparison(
        differences=differences,
        unsettled=unsettled or [],
        chunks=4,
        chunks_differing=2,
        rows_source=100,
        rows_sink=99,
    )
    return AuditResult(
        "d.sink",
        ("team:x", "a@b.io"),
        "db.public.t",
        "iceberg:d.sink",
        ("id",),
        comparison,
        grace_s=60,
        seconds=1.5,
    )


def test_counts_and_first_n_of_each_kind() -> None:
    missing = [Difference((str(i),), (i,), "missing") for i in range(25)]
    differs = [Difference(("900",), (900,), "differs", ("title", "budget"))]
    result = _result(missing + differs, unsettled=[Difference(("7",), (7,), "differs", ("t",))])
    assert not result.passed
    counts = result.counts()
    assert (counts["missing"], counts["differing"], counts["extra"], counts["unsettled"]) == (
        25,
        1,
        0,
        1,
    )
    firsts = result.firsts()
    assert firsts["missing"] == [f"id={i}" for i in range(20)]
    assert firsts["differing"] == [{"key": "id=900", "columns": ["title", "budget"]}]
    text = result.text()
    assert text.splitlines()[0] == "audit d.sink: FAILED (owners: team:x, a@b.io)"
    assert "25 missing in the sink: id=0, id=1" in text
    assert "1 differing: id=900 (title, budget)" in text
    assert "1 still changing (not failed): id=7" in text
    assert result.to_json()["first_missing"][-1] == "id=19"


def test_unsettled_keys_alone_pass() -> None:
    result = _result([], unsettled=[Difference(("7",), (7,), "differs", ("t",))])
    assert result.passed and result.text().startswith("audit d.sink: PASSED")


@pytest.mark.parametrize(
    ("sink_slo", "source_slo", "expected"),
    [
        (timedelta(seconds=30), timedelta(minutes=5), timedelta(seconds=30)),
        (None, timedelta(minutes=5), timedelta(minutes=5)),
        (None, None, DEFAULT_GRACE),
    ],
)
def test_grace_is_the_nearest_freshness_slo(
    sink_slo: timedelta | None, source_slo: timedelta | None, expected: timedelta
) -> None:
    movies = replace(MOVIES, slo=Slo(freshness=source_slo))
    sink = replace(_sink("iceberg_sink", ("d.movies",), ("id",)), slo=Slo(freshness=sink_slo))
    assert grace(sink, {movies.id: movies, sink.id: sink}) == expected
    assert timedelta(minutes=15) == DEFAULT_GRACE


def test_validate_prints_one_audit_line_per_sink(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("audit: ")]
    assert len(lines) == 6  # one per sink of the demo
    assert "audit: studio.movies_history: not auditable: an append table" in "\n".join(lines)


def test_mesh_audit_refuses_a_sink_that_cannot_be_audited(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["audit", "content.title_catalog"]) == 1
    err = capsys.readouterr().err
    assert "content.title_catalog is not auditable: content.localized_titles joins" in err
    assert "`mesh validate` lists the auditable sinks" in err
