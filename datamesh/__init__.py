"""Data mesh platform core: declarations, derived names, the embedded stack and controllers.

Dagster-facing code lives in the top-level ``mesh_assets``, ``resources`` and ``sensors``
packages; everything here is plain Python so it can be unit-tested without Dagster.
"""
