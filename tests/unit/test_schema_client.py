"""The one registry client's errors mean what they say: only a registry that cannot be reached
or cannot serve is transient; credentials, refusals and plain 500s are terminal; nothing comes
back as the string "None".

Served by a tiny HTTP server on 127.0.0.1 that answers what each test scripts (the real client
and its HTTP stack run unchanged); the registry service itself is tested in tests/registry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from datamesh.cdc.pgoutput import Column
from datamesh.cdc.schema_book import SchemaBook
from datamesh.cdc.schemas import TableShape
from datamesh.endpoints import REGISTRY_USER_INFO_VAR
from datamesh.errors import TerminalError, TransientError
from datamesh.process import free_port
from datamesh.schema_client import (
    IncompatibleSchema,
    RegistryRefused,
    RegistryUnavailable,
    SchemaClient,
)

SCHEMA = {"type": "record", "name": "Value", "fields": [{"name": "id", "type": "long"}]}


class Script:
    """What the server answers: (status, JSON body) for every request; requests seen."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {}
        self.seen: list[str] = []


@pytest.fixture
def registry() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append(f"{self.command} {self.path}")
            data = json.dumps(script.body).encode()
            self.send_response(script.status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def test_a_level_read_without_credentials_raises_instead_of_returning_none(
    registry: tuple[str, Script],
) -> None:
    url, script = registry
    script.status, script.body = 401, {"error_code": 401, "message": "Unauthorized"}
    with pytest.raises(RegistryRefused) as caught:
        SchemaClient(url).level("studio.public.movies-value")
    assert not isinstance(caught.value, TransientError)
    assert caught.value.status == 401
    fix = caught.value.fix
    assert fix is not None and REGISTRY_USER_INFO_VAR in fix


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (503, None, True),  # the registry (or its proxy) cannot serve right now
        (502, None, True),
        (504, None, True),
        (500, 50002, True),  # Confluent: operation timed out in the store
        (500, 50003, True),  # Confluent: the primary could not be reached
        (500, 50001, False),  # Confluent: error in the backend data store — a bug, not a blip
        (500, None, False),
        (403, 40301, False),
        (422, 42201, False),
    ],
)
def test_only_an_unreachable_or_unserving_registry_is_transient(
    registry: tuple[str, Script], status: int, code: int | None, transient: bool
) -> None:
    url, script = registry
    script.status, script.body = status, {"error_code": code, "message": "from the test"}
    client = SchemaClient(url)
    for call in (lambda: client.level("s-value"), lambda: client.latest("s-value")):
        with pytest.raises(TerminalError if not transient else RegistryUnavailable) as caught:
            call()
        assert isinstance(caught.value, TransientError) is transient
        assert f"HTTP {status}" in str(caught.value)


def test_registering_an_incompatible_schema_names_the_subject_and_reason(
    registry: tuple[str, Script],
) -> None:
    url, script = registry
    script.status = 409
    script.body = {"error_code": 409, "message": "READER_FIELD_MISSING_DEFAULT_VALUE title"}
    with pytest.raises(IncompatibleSchema) as caught:
        SchemaClient(url).register_id("studio.public.movies-value", SCHEMA)
    assert caught.value.subject == "studio.public.movies-value"
    assert caught.value.reasons == ["READER_FIELD_MISSING_DEFAULT_VALUE title"]


def test_registering_with_refused_credentials_is_terminal(registry: tuple[str, Script]) -> None:
    url, script = registry
    script.status, script.body = 401, {"error_code": 401, "message": "Unauthorized"}
    with pytest.raises(RegistryRefused) as caught:
        SchemaClient(url).register_id("s-value", SCHEMA)
    assert caught.value.status == 401


def test_a_registry_that_does_not_answer_is_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = SchemaClient(url)
    client.client = client.client.__class__(
        {"url": url, "max.retries": 1, "retries.wait.ms": 10, "retries.max.wait.ms": 20}
    )
    with pytest.raises(RegistryUnavailable, match="did not answer"):
        client.register_id("s-value", SCHEMA)
    with pytest.raises(RegistryUnavailable, match="did not answer"):
        client.level("s-value")


def test_the_connector_retries_only_what_retrying_can_fix(
    registry: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CDC connector retries a TransientError forever: a bug inside registration must come
    out as itself (it used to be caught by ``except Exception`` and retried as "unreachable")."""
    url, _ = registry
    book = SchemaBook(url, "studio", "studio-studio-cdc")
    shape = TableShape("public", "movies", (Column(True, "id", 20, -1),), ("id",))

    def broken(*_: object) -> int:
        raise TypeError("a bug in the platform")

    monkeypatch.setattr(book._client, "register_id", broken)
    with pytest.raises(TypeError, match="a bug"):
        book.codec("studio.public.movies", shape)
