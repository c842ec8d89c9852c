"""``state.json``: the records of what ``mesh up`` started, read by status, down and resources.

The record format and its reading live in :mod:`datamesh.endpoints` (an endpoint is an
environment variable, else what ``mesh up`` recorded), so that module needs nothing of the
stack; the stack reads and writes them through these names.
"""

from __future__ import annotations

from datamesh.endpoints import Record
from datamesh.endpoints import load_records as load
from datamesh.endpoints import save_records as save

__all__ = ["Record", "load", "save"]
