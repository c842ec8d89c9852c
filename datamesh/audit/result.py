"""The outcome of one audit: counts, the first keys of each kind, and how to show it.

``passed`` is True when no difference was confirmed (keys still in flight when the audit
stopped are *unsettled*: reported, never a failure). ``metadata()`` is what the Dagster check
records; ``text()`` what ``mesh audit`` prints; ``to_json()`` its ``--json`` form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datamesh.audit.compare import Comparison, Difference

FIRST_N = 20


def key_label(names: Sequence[str], key: Sequence[str]) -> str:
    """``id=42`` / ``movie_id=1,locale=fr`` from key column names and canonical texts."""
    return ",".join(f"{n}={v}" for n, v in zip(names, key, strict=False))


@dataclass
class AuditResult:
    """One audit of ``product`` (a sink) against ``source`` (``<db>.<schema>.<table>``)."""

    product: str
    owners: tuple[str, ...]
    source: str
    sink: str
    key_names: tuple[str, ...]
    comparison: Comparison
    grace_s: float
    seconds: float
    first_n: int = FIRST_N
    repaired: dict[str, int] = field(default_factory=dict)

    def _of(self, kind: str) -> list[Difference]:
        return [d for d in self.comparison.differences if d.kind == kind]

    @property
    def passed(self) -> bool:
        """No difference older than the grace."""
        return not self.comparison.differences

    def counts(self) -> dict[str, int]:
        """Missing, extra, differing and unsettled keys; rows and chunks."""
        c = self.comparison
        return {
            "missing": len(self._of("missing")),
            "extra": len(self._of("extra")),
            "differing": len(self._of("differs")),
            "unsettled": len(c.unsettled),
            "settled_in_flight": c.settled,
            "rows_source": c.rows_source,
            "rows_sink": c.rows_sink,
            "chunks": c.chunks,
            "chunks_differing": c.chunks_differing,
        }

    def firsts(self) -> dict[str, list[Any]]:
        """The first ``first_n`` keys of each kind (differing ones with their columns)."""

        def label(d: Difference) -> str:
            return key_label(self.key_names, d.key)

        return {
            "missing": [label(d) for d in self._of("missing")[: self.first_n]],
            "extra": [label(d) for d in self._of("extra")[: self.first_n]],
            "differing": [
                {"key": label(d), "columns": list(d.columns)}
                for d in self._of("differs")[: self.first_n]
            ],
            "unsettled": [label(d) for d in self.comparison.unsettled[: self.first_n]],
        }

    def to_json(self) -> dict[str, Any]:
        """Everything, for machines."""
        return {
            "product": self.product,
            "passed": self.passed,
            "owners": list(self.owners),
            "source": self.source,
            "sink": self.sink,
            "grace_s": self.grace_s,
            "seconds": round(self.seconds, 3),
            **self.counts(),
            **{f"first_{k}": v for k, v in self.firsts().items()},
            **({"repaired": self.repaired} if self.repaired else {}),
        }

    def metadata(self) -> dict[str, Any]:
        """Flat values for a Dagster check result: counts, then the first keys as text."""
        firsts = self.firsts()
        return {
            "owners": ", ".join(self.owners),
            "source": self.source,
            "sink": self.sink,
            **self.counts(),
            "first_missing": ", ".join(firsts["missing"]),
            "first_extra": ", ".join(firsts["extra"]),
            "first_differing": "; ".join(
                f"{d['key']} ({', '.join(d['columns'])})" for d in firsts["differing"]
            ),
            "grace_s": self.grace_s,
            "audit_seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        """Human lines: the verdict, counts, then the first keys of each kind."""
        c = self.counts()
        verdict = "PASSED" if self.passed else f"FAILED (owners: {', '.join(self.owners)})"
        lines = [
            f"audit {self.product}: {verdict}",
            f"  {self.source} ({c['rows_source']} rows) vs {self.sink} ({c['rows_sink']} rows); "
            f"{c['chunks_differing']}/{c['chunks']} chunks differed; {c['settled_in_flight']} "
            f"keys settled in flight; {self.seconds:.1f}s",
        ]
        firsts = self.firsts()
        for kind, what in (
            ("missing", "missing in the sink"),
            ("extra", "in the sink only"),
            ("unsettled", "still changing (not failed)"),
        ):
            if c[kind]:
                lines.append(f"  {c[kind]} {what}: {', '.join(firsts[kind])}")
        if c["differing"]:
            shown = "; ".join(
                f"{d['key']} ({', '.join(d['columns'])})" for d in firsts["differing"]
            )
            lines.append(f"  {c['differing']} differing: {shown}")
        for what, n in self.repaired.items():
            lines.append(f"  repair: {n} {what}")
        return "\n".join(lines)
