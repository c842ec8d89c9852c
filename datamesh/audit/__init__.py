"""End-to-end audits: does a sink table hold exactly its CDC source table's rows?

- :mod:`~datamesh.audit.auditability`: which sinks can be audited (pure, from declarations);
- :mod:`~datamesh.audit.normalize`: one text form per value on both sides (digests compare);
- :mod:`~datamesh.audit.pg_side` / :mod:`~datamesh.audit.iceberg_side`: chunk digests and rows;
- :mod:`~datamesh.audit.compare`: chunked comparison, then the re-check of in-flight keys;
- :mod:`~datamesh.audit.repair`: re-capture differing keys through a DBLog snapshot;
- :mod:`~datamesh.audit.command`: ``mesh audit``.
"""
