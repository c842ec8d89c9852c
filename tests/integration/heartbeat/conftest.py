"""The heartbeat tests reuse the sinks' source-database fixture (a fresh database per test)."""

from tests.integration.sinks.conftest import source

__all__ = ["source"]
