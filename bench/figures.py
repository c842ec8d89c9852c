"""What each bench figure is compared with: its baseline (measured in the same run) and the
floor an issue set for it. The one table of floors; the report (:mod:`bench.report`) and the
areas that warn about a missed floor (:mod:`bench.sink_bench`) read it from here.

``COMPARISONS`` maps ``(area, ratio key)`` to ``(figure key, baseline key)``: the ratio is
computed by the area's module (its docstring says which way round; most are ``baseline /
platform`` for times and ``platform / baseline`` for rates, so above 1 the platform is faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Floor:
    """A figure must stay ``below`` or ``above`` ``value``; ``source`` names who asked."""

    direction: Literal["below", "above"]
    value: float
    source: str

    def met(self, measured: float) -> bool:
        """True when ``measured`` satisfies the floor."""
        return measured < self.value if self.direction == "below" else measured >= self.value

    def text(self) -> str:
        """``< 5`` or ``>= 10,000``."""
        number = f"{self.value:,.0f}" if self.value >= 100 else f"{self.value:g}"
        return f"{'<' if self.direction == 'below' else '>='} {number}"


FLOORS: dict[tuple[str, str], Floor] = {
    ("control_plane", "noop_plan_1000_s"): Floor("below", 5.0, "issue 12"),
    ("control_plane", "definitions_load_1000_s"): Floor("below", 10.0, "issue 12"),
    ("sink", "upsert_changes_per_s"): Floor("above", 10_000, "issue 9"),
    ("sink", "append_rows_per_s"): Floor("above", 50_000, "issue 9"),
    ("cdc", "changes_per_s"): Floor("above", 30_000, "issue 4"),
    ("cdc", "ratio_vs_raw_decoding"): Floor("above", 0.4, "issue 4"),
    ("flink", "ratio_vs_raw_copy"): Floor("above", 0.5, "issue 5"),
    ("audit", "audit_1m_equal_s"): Floor("below", 60.0, "issue 13"),
    ("audit", "audit_1m_100_diffs_s"): Floor("below", 60.0, "issue 13"),
    ("demo", "data_moving_after_ui_s"): Floor("below", 120.0, "issue 14"),
}

COMPARISONS: dict[tuple[str, str], tuple[str, str]] = {
    ("registry", "ratio_vs_http_floor"): ("id_lookups_http_per_s", "http_floor_per_s"),
    ("control_plane", "ratio_vs_raw_admin"): ("apply_new_topic_ms", "raw_create_topic_ms"),
    ("control_plane", "ratio_vs_raw_reads_100"): ("noop_plan_100_s", "raw_reads_100_s"),
    ("control_plane", "ratio_vs_raw_reads_1000"): ("noop_plan_1000_s", "raw_reads_1000_s"),
    ("control_plane", "ratio_vs_load_products_100"): (
        "definitions_load_100_s",
        "load_products_100_s",
    ),
    ("control_plane", "ratio_vs_load_products_1000"): (
        "definitions_load_1000_s",
        "load_products_1000_s",
    ),
    ("sensor", "ratio_vs_raw_watermarks"): ("tick_ms", "raw_watermarks_ms"),
    ("cdc", "ratio_vs_raw_decoding"): ("changes_per_s", "raw_decoding_changes_per_s"),
    ("cdc", "ratio_vs_raw_producer"): ("changes_per_s", "raw_producer_msgs_per_s"),
    ("flink", "ratio_vs_raw_copy"): ("records_per_s", "raw_copy_records_per_s"),
    ("sink", "ratio_vs_parquet_write"): ("upsert_changes_per_s", "parquet_write_rows_per_s"),
    ("sink", "append_ratio_vs_parquet_write"): ("append_rows_per_s", "parquet_write_rows_per_s"),
    ("sink", "upsert_ratio_vs_raw_kafka_read"): (
        "upsert_changes_per_s",
        "raw_kafka_read_messages_per_s",
    ),
    ("sink", "append_ratio_vs_raw_kafka_read"): (
        "append_rows_per_s",
        "raw_kafka_read_messages_per_s",
    ),
    ("sink", "postgres_sink_ratio_vs_direct_insert"): (
        "postgres_sink_rows_per_s",
        "postgres_direct_upsert_rows_per_s",
    ),
    ("sink", "postgres_sink_drain_ratio_vs_direct_insert"): (
        "postgres_sink_drain_rows_per_s",
        "postgres_direct_upsert_rows_per_s",
    ),
    ("checks", "ratio_vs_raw_offsets"): ("evaluate_all_ms", "raw_offsets_ms"),
    ("checks", "ratio_vs_raw_reads"): ("evaluate_all_ms", "raw_reads_ms"),
    ("audit", "ratio_vs_key_read"): ("audit_1m_equal_s", "key_read_baseline_s"),
    ("audit", "diffs_ratio_vs_key_read"): ("audit_1m_100_diffs_s", "key_read_baseline_s"),
    ("audit", "pg_sink_ratio_vs_key_read"): (
        "pg_sink_audit_1m_equal_s",
        "pg_sink_key_read_baseline_s",
    ),
    ("demo", "ratio_vs_start_run_steps"): ("start_run_s", "start_run_steps_s"),
}
