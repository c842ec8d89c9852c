"""Registry operations: the Confluent semantics on top of the store, independent of HTTP.

Each public method is one store transaction, so its checks and its writes see the same state;
each raises ``RegistryError`` (with the Confluent code) for anything the client got wrong.
``version=None`` means "latest" throughout.
"""

from __future__ import annotations

from datamesh.registry import compat
from datamesh.registry.errors import (
    incompatible,
    schema_not_found,
    subject_not_found,
    subject_not_soft_deleted,
    subject_soft_deleted,
    version_not_found,
    version_not_soft_deleted,
    version_soft_deleted,
)
from datamesh.registry.levels import effective_level
from datamesh.registry.parsing import ParsedSchema, parse_schema
from datamesh.registry.store import Store, Tx, VersionRow

SCHEMA_CACHE_SIZE = 10_000


class Registry:
    """The schema registry over one ``Store``; thread-safe because the store is."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # id -> schema text never changes once assigned (ids are never reused or rewritten),
        # so this cache can never be stale; it lets id lookups skip the database entirely.
        self._schema_texts: dict[int, str] = {}

    # -- subjects and versions -------------------------------------------------------------

    def subjects(self, include_deleted: bool) -> list[str]:
        return self.store.read(lambda tx: tx.subjects(include_deleted))

    def versions_by_prefix(
        self, prefix: str, latest_only: bool, include_deleted: bool
    ) -> list[VersionRow]:
        """Versions of the subjects starting with ``prefix`` (``GET /schemas``)."""
        return self.store.read(
            lambda tx: tx.versions_by_prefix(prefix, latest_only, include_deleted)
        )

    def versions(self, subject: str, include_deleted: bool) -> list[int]:
        """Version numbers of ``subject``; 40401 if it has none (live ones unless asked)."""
        rows = self.store.read(lambda tx: _rows_or_404(tx, subject, include_deleted))
        return [row.version for row in rows]

    def version(self, subject: str, version: int | None, include_deleted: bool) -> VersionRow:
        """One version (``None`` = latest); 40401 unknown subject, 40402 unknown version."""

        def run(tx: Tx) -> VersionRow:
            rows = _rows_or_404(tx, subject, include_deleted)
            return _pick(rows, version)

        return self.store.read(run)

    def register(self, subject: str, schema: ParsedSchema) -> int:
        """Register ``schema`` under ``subject`` and return its id.

        Already a live version of the subject: its id, nothing written. Otherwise the schema
        must pass the subject's compatibility level (409 with reasons if not; nothing stored),
        then becomes the next version, reusing the schema's id if any subject has it.
        """

        def run(tx: Tx) -> int:
            live = tx.versions(subject, include_deleted=False)
            schema_id = tx.schema_id_for(schema.canonical)
            if schema_id is not None and any(row.schema_id == schema_id for row in live):
                return schema_id
            level = effective_level(tx, subject)
            previous = _previous(live)
            reasons = compat.check(schema.avro, previous, level)
            if reasons:
                raise incompatible(subject, reasons)
            if schema_id is None:
                schema_id = tx.add_schema(schema.canonical, schema.text)
            tx.add_version(subject, tx.next_version(subject), schema_id)
            return schema_id

        return self.store.write(run)

    def lookup(self, subject: str, schema: ParsedSchema, include_deleted: bool) -> VersionRow:
        """The latest version of ``subject`` holding ``schema``; 40401 / 40403 if none."""

        def run(tx: Tx) -> VersionRow:
            rows = _rows_or_404(tx, subject, include_deleted)
            schema_id = tx.schema_id_for(schema.canonical)
            matches = [row for row in rows if row.schema_id == schema_id]
            if not matches:
                raise schema_not_found()
            return matches[-1]

        return self.store.read(run)

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        """Soft-delete the live versions, or (``permanent``) remove soft-deleted ones for good.

        Returns the versions deleted. Permanent deletion requires a prior soft delete (40405),
        like Confluent, so that a single call can never destroy live versions.
        """

        def run(tx: Tx) -> list[int]:
            rows = _rows_or_404(tx, subject, include_deleted=True)
            live = [row.version for row in rows if not row.deleted]
            if permanent:
                if live:
                    raise subject_not_soft_deleted(subject)
                versions = [row.version for row in rows]
                tx.hard_delete(subject, versions)
                tx.delete_level(subject)
                return versions
            if not live:
                raise subject_soft_deleted(subject)
            tx.soft_delete(subject, live)
            return live

        return self.store.write(run)

    def delete_version(self, subject: str, version: int | None, permanent: bool) -> int:
        """Soft-delete one version, or (``permanent``) remove an already soft-deleted one."""

        def run(tx: Tx) -> int:
            # "latest" means the latest live version; a number may name a soft-deleted one.
            row = _pick(_rows_or_404(tx, subject, include_deleted=version is not None), version)
            if permanent:
                if not row.deleted:
                    raise version_not_soft_deleted(subject, row.version)
                tx.hard_delete(subject, [row.version])
            else:
                if row.deleted:
                    raise version_soft_deleted(subject, row.version)
                tx.soft_delete(subject, [row.version])
            return row.version

        return self.store.write(run)

    # -- schemas by id ---------------------------------------------------------------------

    def cached_schema_text(self, schema_id: int) -> str | None:
        """The schema text of ``schema_id`` if already in memory; never touches the store."""
        return self._schema_texts.get(schema_id)

    def schema_text(self, schema_id: int) -> str:
        """The schema text of ``schema_id``; 40403 if no such id was ever assigned."""
        text = self.store.read(lambda tx: tx.schema_text(schema_id))
        if text is None:
            raise schema_not_found(schema_id)
        if len(self._schema_texts) >= SCHEMA_CACHE_SIZE:
            self._schema_texts.clear()  # crude but bounded; refilling costs one query per id
        self._schema_texts[schema_id] = text
        return text

    def schema_usages(self, schema_id: int, include_deleted: bool) -> list[tuple[str, int]]:
        """(subject, version) pairs using ``schema_id``; 40403 if the id is unknown."""

        def run(tx: Tx) -> list[tuple[str, int]]:
            if tx.schema_text(schema_id) is None:
                raise schema_not_found(schema_id)
            return tx.schema_usages(schema_id, include_deleted)

        return self.store.read(run)

    def test_compatibility(
        self, subject: str, schema: ParsedSchema, version: int | None, against_all: bool = False
    ) -> list[str]:
        """Reasons why ``schema`` would break the subject's level; [] = compatible.

        ``against_all``: the same check a registration would do. Otherwise the level's
        direction(s) against one version only (``None`` = latest); with no versions at all,
        "latest" is trivially compatible, as in Confluent.
        """

        def run(tx: Tx) -> list[str]:
            level = effective_level(tx, subject)
            live = tx.versions(subject, include_deleted=False)
            if not against_all:
                if version is None and not live:
                    return []
                live = [_pick(_rows_or_404(tx, subject, False), version)]
                level = level.removesuffix("_TRANSITIVE")  # one target version: no history
            previous = _previous(live)
            return compat.check(schema.avro, previous, level)

        return self.store.read(run)


def _previous(rows: list[VersionRow]) -> list[compat.PreviousVersion]:
    # Stored texts were valid when registered; parse_schema caches, so this is cheap.
    return [compat.PreviousVersion(row.version, parse_schema(row.schema).avro) for row in rows]


def _rows_or_404(tx: Tx, subject: str, include_deleted: bool) -> list[VersionRow]:
    rows = tx.versions(subject, include_deleted)
    if not rows:
        raise subject_not_found(subject)
    return rows


def _pick(rows: list[VersionRow], version: int | None) -> VersionRow:
    """``version`` among ``rows`` (ascending; ``None`` = the last); 40402 if absent."""
    if version is None:
        return rows[-1]
    for row in rows:
        if row.version == version:
            return row
    raise version_not_found(version)
