"""Parse Avro schema text and compute the canonical key that decides schema identity.

Contract: ``parse_schema(text)`` returns a ``ParsedSchema`` or raises ``RegistryError`` 42201 —
never any other exception — because the text comes straight from an HTTP client.

Identity key: two texts get the same schema id iff their canonical keys are equal. The key is
the ``avro`` package's full JSON rendering of the parsed schema (``Schema.to_json()``), dumped
with sorted keys and no whitespace. Like Avro's Parsing Canonical Form it ignores whitespace,
key order, ``{"type": "int"}`` versus ``"int"`` and namespace spelling (``"a.R"`` versus
``"name": "R", "namespace": "a"``). Unlike Parsing Canonical Form (``schema.canonical_form``) it
KEEPS defaults, aliases, logical types, doc and custom properties: Parsing Canonical Form strips
them, so a field with and without a default, or ``long`` with and without ``timestamp-millis``,
would share one id and the second subject would be served the first one's text, silently
changing what its readers resolve. Confluent likewise keys on the full schema string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import avro.schema

from datamesh.registry.errors import RegistryError, invalid_schema

SCHEMA_TYPE_AVRO = "AVRO"
MAX_REASON = 500  # parser messages can quote the whole schema; keep error bodies small


@dataclass(frozen=True)
class ParsedSchema:
    """A valid Avro schema: the text as given, its identity key and the parsed ``avro`` object."""

    text: str
    canonical: str
    avro: avro.schema.Schema


def canonical_key(parsed: avro.schema.Schema) -> str:
    """The identity key of a parsed schema (see the module docstring for what it keeps)."""
    return json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"))


def parse_schema(text: object) -> ParsedSchema:
    """Parse client-supplied schema text; raise ``RegistryError`` 42201 if it is not valid Avro."""
    if not isinstance(text, str):
        raise invalid_schema(f"the schema must be a JSON string, got {type(text).__name__}")
    if not text.strip():
        raise invalid_schema("the schema is empty")
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ParsedSchema:
    # Parsed schemas are never mutated after parsing, so sharing one object between requests
    # (and threads) is safe; caching saves re-parsing stored versions on every compatibility check.
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise invalid_schema(f"not valid JSON: {exc}"[:MAX_REASON]) from exc
    try:
        parsed = avro.schema.parse(text)
        canonical = canonical_key(parsed)
    except RegistryError:
        raise
    except Exception as exc:
        # The avro parser signals bad input with AvroException but also lets TypeError,
        # KeyError, AttributeError etc. escape on odd JSON shapes; all of them are the
        # client's fault here, so all become 42201 rather than a 500.
        reason = f"{type(exc).__name__}: {exc}"
        raise invalid_schema(reason[:MAX_REASON]) from exc
    return ParsedSchema(text=text, canonical=canonical, avro=parsed)


def check_schema_type(schema_type: object) -> None:
    """Only Avro is implemented; anything else is refused with 42201 (Confluent's code)."""
    if schema_type is None or schema_type == SCHEMA_TYPE_AVRO:
        return
    raise invalid_schema(f"unsupported schemaType {schema_type!r}; this registry supports AVRO")
