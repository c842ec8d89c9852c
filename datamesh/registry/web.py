"""HTTP plumbing for the registry: content types, request parsing and error responses.

Contract: every helper that reads client input either returns a valid value or raises
``RegistryError`` with the Confluent code, so handlers never see malformed input and the
server never answers 500 because of what a client sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from datamesh.registry.errors import RegistryError, bad_request, invalid_version, schema_not_found
from datamesh.registry.parsing import ParsedSchema, check_schema_type, parse_schema

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPTED_CONTENT_TYPES = frozenset(
    {MEDIA_TYPE, "application/vnd.schemaregistry+json", "application/json"}
)
MAX_VERSION = 2**31 - 1
MAX_SCHEMA_ID = 2**31 - 1
T = TypeVar("T")
log = logging.getLogger("datamesh.registry")


class RegistryResponse(JSONResponse):
    """JSON in the registry's own media type, as Confluent answers."""

    media_type = MEDIA_TYPE


def reply(content: Any, status_code: int = 200) -> Response:
    return RegistryResponse(content, status_code=status_code)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; 415 for a foreign content type, 400 if not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
        raise RegistryError(415, 415, f"Unsupported content type {content_type!r}")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise bad_request(f"Malformed JSON request body: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def schema_from_body(body: dict[str, Any]) -> ParsedSchema:
    """The Avro schema of a register/lookup/compatibility request (42201 if unusable)."""
    check_schema_type(body.get("schemaType"))
    references = body.get("references")
    if references:
        # Schema references would need cross-subject resolution, which this registry lacks;
        # refusing is safer than storing a schema whose named types cannot be resolved.
        raise RegistryError(422, 42201, "Invalid schema: schema references are not supported")
    return parse_schema(body.get("schema"))


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter; clients send ``true``/``True``/``false``/``False``."""
    return request.query_params.get(name, "false").strip().lower() == "true"


def parse_version(text: str) -> int | None:
    """A version path segment: ``latest`` or ``-1`` give ``None``; else 1..2^31-1 (42202)."""
    if text.strip().lower() == "latest":
        return None
    try:
        number = int(text)
    except ValueError:
        raise invalid_version(text) from None
    if number == -1:
        return None
    if not 1 <= number <= MAX_VERSION:
        raise invalid_version(text)
    return number


def parse_schema_id(text: str) -> int:
    """A schema id path segment; anything that is not a positive integer cannot exist (40403)."""
    try:
        number = int(text)
    except ValueError:
        raise schema_not_found() from None
    if not 1 <= number <= MAX_SCHEMA_ID:  # ids are Java ints in Confluent, and SQLite int64
        raise schema_not_found(number)
    return number


def paginate(items: list[T], request: Request) -> list[T]:
    """Apply Confluent's ``offset``/``limit`` query parameters (a negative limit = no limit)."""
    try:
        offset = max(int(request.query_params.get("offset", "0")), 0)
        limit = int(request.query_params.get("limit", "-1"))
    except ValueError:
        raise bad_request("offset and limit must be integers") from None
    return items[offset:] if limit < 0 else items[offset : offset + limit]


async def registry_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return reply(exc.body(), status_code=exc.http_status)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in the Confluent error shape instead of plain text."""
    assert isinstance(exc, HTTPException)
    message = f"HTTP {exc.status_code} {exc.detail}"
    return reply({"error_code": exc.status_code, "message": message}, exc.status_code)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: log the traceback, answer with an opaque 500 body."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return reply({"error_code": 50001, "message": "Internal server error"}, 500)
