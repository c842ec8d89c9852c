"""Which REPLICA IDENTITY settings the connector follows, and what the events carry under each.

The identity decides what pgoutput logs of an UPDATE's and a DELETE's old row
(https://www.postgresql.org/docs/15/sql-altertable.html#SQL-ALTERTABLE-REPLICA-IDENTITY):

- ``FULL``: the whole old row. ``before`` is complete and an unchanged TOASTed value is copied
  from it into ``after``. The richer choice, at the cost of logging every old row.
- ``DEFAULT`` (the primary key): as Debezium does with it, an update has a null ``before``
  unless the key changed; a delete's ``before`` holds the key, every other column null; an
  unchanged TOASTed value is written as :data:`datamesh.cdc.unavailable.UNAVAILABLE_VALUE`.
- ``USING INDEX``: like DEFAULT with the index's columns, accepted when they include the whole
  primary key (the Kafka key of a delete comes from them).
- ``NOTHING``: deletes carry no key at all. Refused.
"""

from __future__ import annotations

from collections.abc import Collection

from datamesh.cdc.errors import SourceConfigError

IDENTITY_NAMES = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}


def identity_refusal(
    table: str, identity: str, key: Collection[str], identity_columns: Collection[str]
) -> SourceConfigError | None:
    """Why ``table`` cannot be followed with this identity (None: it can).

    ``key`` is the primary key, ``identity_columns`` the columns pgoutput logs of an old row
    under the identity (the primary key for DEFAULT, the index's for USING INDEX).
    """
    if identity == "f":
        return None
    name = IDENTITY_NAMES.get(identity, repr(identity))
    if identity in ("d", "i") and key and set(key) <= set(identity_columns):
        return None
    if identity == "n":
        problem = "deletes and updates would carry no key: they could not be published"
    elif not key:
        problem = "it has no primary key, so deletes would carry no Kafka key"
    else:
        problem = (
            f"the identity's columns ({', '.join(identity_columns) or 'none'}) do not include "
            f"the primary key ({', '.join(key)}) that keys the events"
        )
    return SourceConfigError(
        f"table {table} has REPLICA IDENTITY {name}: {problem}",
        fix=f"ALTER TABLE {table} REPLICA IDENTITY FULL (complete before images), or give it a "
        f"primary key and ALTER TABLE {table} REPLICA IDENTITY DEFAULT (key-only before "
        "images); --set-replica-identity sets FULL",
    )
