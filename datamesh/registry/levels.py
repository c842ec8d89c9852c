"""Compatibility levels: the global one and per-subject overrides, stored in the ``config`` table.

A subject without its own level follows the global one; without a global one, BACKWARD.
Each method is one store transaction and raises ``RegistryError`` with the Confluent code.
"""

from __future__ import annotations

from datamesh.registry import compat
from datamesh.registry.errors import subject_level_not_configured
from datamesh.registry.store import GLOBAL, Store, Tx


def effective_level(tx: Tx, subject: str) -> str:
    """The level that governs ``subject``: its own, else the global one, else BACKWARD."""
    return tx.level(subject) or tx.level(GLOBAL) or compat.DEFAULT_LEVEL


class Levels:
    """Read and change compatibility levels; ``subject=None`` means the global level."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def level(self, subject: str | None, default_to_global: bool) -> str:
        """Global level, or a subject's own level (40408 if unset, unless ``default_to_global``)."""

        def run(tx: Tx) -> str:
            if subject is None:
                return effective_level(tx, GLOBAL)
            own = tx.level(subject)
            if own is not None:
                return own
            if default_to_global:
                return effective_level(tx, GLOBAL)
            raise subject_level_not_configured(subject)

        return self.store.read(run)

    def set_level(self, subject: str | None, level: object) -> str:
        """Set the global or a subject's level (42203 if not a level); returns the level set."""
        normalized = compat.normalize_level(level)
        key = GLOBAL if subject is None else subject
        self.store.write(lambda tx: tx.set_level(key, normalized))
        return normalized

    def delete_level(self, subject: str | None) -> str:
        """Drop a subject's level (it follows the global one again) or reset the global one to
        the default. Returns the level in force before."""

        def run(tx: Tx) -> str:
            key = GLOBAL if subject is None else subject
            previous = tx.level(key)
            if previous is None:
                if subject is not None:
                    raise subject_level_not_configured(subject)
                previous = compat.DEFAULT_LEVEL
            tx.delete_level(key)
            return previous

        return self.store.write(run)
