"""The drift sensor judges only products started at least once (sensors.drift_sensor.started)."""

from __future__ import annotations

from datamesh.control.drift import Verdict
from sensors.drift_sensor import started


def test_a_product_never_started_gets_no_drift_verdict() -> None:
    found = [
        Verdict("studio.movies", True, ()),
        Verdict("studio.movies_history", False, ("CREATE sink_table studio.movies_history",)),
        Verdict("content.artwork", False, ("UPDATE topic content.public.artwork: retention",)),
    ]
    judged, waiting = started(found, {"studio.movies", "content.artwork"})
    assert [v.product for v in judged] == ["studio.movies", "content.artwork"]
    assert not judged[1].in_sync  # drift of a started product is still reported
    assert waiting == ["studio.movies_history"]


def test_nothing_started_nothing_judged() -> None:
    judged, waiting = started([Verdict("d.p", False, ("CREATE topic d.p",))], set())
    assert judged == [] and waiting == ["d.p"]
