"""The Confluent Schema Registry REST API (Avro only) as a Starlette ASGI app.

Handlers only translate HTTP to ``Registry`` calls and back; schema parsing and the SQLite work
run on the thread pool (``run_in_threadpool``) so a big schema or a slow fsync never blocks the
event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datamesh.registry.auth import BasicAuth
from datamesh.registry.errors import RegistryError
from datamesh.registry.levels import Levels
from datamesh.registry.parsing import SCHEMA_TYPE_AVRO
from datamesh.registry.service import Registry
from datamesh.registry.store import Store, VersionRow
from datamesh.registry.web import (
    MEDIA_TYPE,
    flag,
    http_error_handler,
    paginate,
    parse_schema_id,
    parse_version,
    read_json_object,
    registry_error_handler,
    reply,
    schema_from_body,
    unexpected_error_handler,
)

T = TypeVar("T")


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def _call(fn: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(fn, *args)


def _version_body(row: VersionRow) -> dict[str, Any]:
    # Confluent omits schemaType when it is AVRO, so Avro-only clients see the classic shape.
    return {
        "subject": row.subject,
        "version": row.version,
        "id": row.schema_id,
        "schema": row.schema,
    }


def _levels(request: Request) -> Levels:
    levels: Levels = request.app.state.levels
    return levels


def _subject(request: Request) -> str:
    subject: str = request.path_params["subject"]
    return subject


async def root(request: Request) -> Response:
    return reply({})


async def list_subjects(request: Request) -> Response:
    subjects = await _call(_registry(request).subjects, flag(request, "deleted"))
    prefix = request.query_params.get("subjectPrefix", "")
    return reply(paginate([s for s in subjects if s.startswith(prefix)], request))


async def list_versions(request: Request) -> Response:
    versions = await _call(_registry(request).versions, _subject(request), flag(request, "deleted"))
    return reply(paginate(versions, request))


async def register(request: Request) -> Response:
    schema = await _call(schema_from_body, await read_json_object(request))
    schema_id = await _call(_registry(request).register, _subject(request), schema)
    return reply({"id": schema_id})


async def lookup(request: Request) -> Response:
    schema = await _call(schema_from_body, await read_json_object(request))
    registry, deleted = _registry(request), flag(request, "deleted")
    row = await _call(registry.lookup, _subject(request), schema, deleted)
    return reply(_version_body(row))


async def delete_subject(request: Request) -> Response:
    registry, permanent = _registry(request), flag(request, "permanent")
    return reply(await _call(registry.delete_subject, _subject(request), permanent))


async def get_version(request: Request) -> Response:
    version = parse_version(request.path_params["version"])
    registry, deleted = _registry(request), flag(request, "deleted")
    row = await _call(registry.version, _subject(request), version, deleted)
    return reply(_version_body(row))


async def get_version_schema(request: Request) -> Response:
    version = parse_version(request.path_params["version"])
    registry, deleted = _registry(request), flag(request, "deleted")
    row = await _call(registry.version, _subject(request), version, deleted)
    # The stored schema text is itself JSON: send it as the body, not as a JSON string.
    return Response(row.schema, media_type=MEDIA_TYPE)


async def delete_version(request: Request) -> Response:
    version = parse_version(request.path_params["version"])
    registry, permanent = _registry(request), flag(request, "permanent")
    return reply(await _call(registry.delete_version, _subject(request), version, permanent))


async def _schema_text(request: Request) -> str:
    registry, schema_id = _registry(request), parse_schema_id(request.path_params["schema_id"])
    # The hot path of every deserializer: answer from memory without a thread-pool hop.
    cached = registry.cached_schema_text(schema_id)
    return cached if cached is not None else await _call(registry.schema_text, schema_id)


async def schema_by_id(request: Request) -> Response:
    return reply({"schema": await _schema_text(request)})


async def schema_by_id_raw(request: Request) -> Response:
    return Response(await _schema_text(request), media_type=MEDIA_TYPE)


async def schema_versions(request: Request) -> Response:
    schema_id = parse_schema_id(request.path_params["schema_id"])
    registry, deleted = _registry(request), flag(request, "deleted")
    usages = await _call(registry.schema_usages, schema_id, deleted)
    return reply(paginate([{"subject": s, "version": v} for s, v in usages], request))


async def schema_subjects(request: Request) -> Response:
    schema_id = parse_schema_id(request.path_params["schema_id"])
    registry, deleted = _registry(request), flag(request, "deleted")
    usages = await _call(registry.schema_usages, schema_id, deleted)
    return reply(paginate(sorted({s for s, _ in usages}), request))


async def list_schemas(request: Request) -> Response:
    """Confluent's ``GET /schemas``: the versions of every subject under ``subjectPrefix``
    (only each one's latest with ``latestOnly=true``) in one request — what the controller
    reads to observe a thousand subjects."""
    prefix = request.query_params.get("subjectPrefix", "")
    latest_only, deleted = flag(request, "latestOnly"), flag(request, "deleted")
    rows = await _call(_registry(request).versions_by_prefix, prefix, latest_only, deleted)
    return reply(paginate([_version_body(row) for row in rows], request))


async def schema_types(request: Request) -> Response:
    return reply([SCHEMA_TYPE_AVRO])


async def config(request: Request) -> Response:
    """GET/PUT/DELETE ``/config`` (global) and ``/config/{subject}``."""
    levels, subject = _levels(request), request.path_params.get("subject")
    if request.method == "GET":
        default_to_global = flag(request, "defaultToGlobal")
        level = await _call(levels.level, subject, default_to_global)
        return reply({"compatibilityLevel": level})
    if request.method == "PUT":
        body = await read_json_object(request)
        level = await _call(levels.set_level, subject, body.get("compatibility"))
        return reply({"compatibility": level})
    return reply({"compatibilityLevel": await _call(levels.delete_level, subject)})


async def compatibility(request: Request) -> Response:
    """POST ``/compatibility/subjects/{subject}/versions[/{version}]``."""
    schema = await _call(schema_from_body, await read_json_object(request))
    raw_version = request.path_params.get("version")
    version = None if raw_version is None else parse_version(raw_version)
    registry, subject, against_all = _registry(request), _subject(request), raw_version is None
    reasons = await _call(registry.test_compatibility, subject, schema, version, against_all)
    body: dict[str, Any] = {"is_compatible": not reasons}
    if flag(request, "verbose"):
        body["messages"] = reasons
    return reply(body)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/subjects", list_subjects, methods=["GET"]),
    Route("/subjects/{subject}", lookup, methods=["POST"]),
    Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
    Route("/subjects/{subject}/versions", list_versions, methods=["GET"]),
    Route("/subjects/{subject}/versions", register, methods=["POST"]),
    Route("/subjects/{subject}/versions/{version}", get_version, methods=["GET"]),
    Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
    Route("/subjects/{subject}/versions/{version}/schema", get_version_schema, methods=["GET"]),
    Route("/schemas", list_schemas, methods=["GET"]),
    Route("/schemas/types", schema_types, methods=["GET"]),
    Route("/schemas/ids/{schema_id}", schema_by_id, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/schema", schema_by_id_raw, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/versions", schema_versions, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/subjects", schema_subjects, methods=["GET"]),
    Route("/config", config, methods=["GET", "PUT", "DELETE"]),
    Route("/config/{subject}", config, methods=["GET", "PUT", "DELETE"]),
    Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
    Route("/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]),
]


def create_app(data_dir: Path, user_info: str | None = None) -> Starlette:
    """The registry app over the SQLite store in ``data_dir`` (created if missing); with
    ``user_info`` (``user:password``) every request must carry it as basic credentials.

    The store is opened here, so a bad data directory fails before the server binds its port;
    it is closed when the app shuts down.
    """
    store = Store(data_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(BasicAuth, user_info=user_info)] if user_info else [],
        exception_handlers={
            RegistryError: registry_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
    )
    app.state.registry = Registry(store)
    app.state.levels = Levels(store)
    return app
