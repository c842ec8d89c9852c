"""Small builders of Avro schema text and raw HTTP calls shared by the registry tests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HEADERS = {"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def record(*fields: dict[str, Any], name: str = "Rec", **extra: Any) -> str:
    """The JSON text of a record schema."""
    return json.dumps({"type": "record", "name": name, "fields": list(fields), **extra})


def enum(symbols: list[str], name: str = "Color", **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": name, "symbols": symbols, **extra}


def subject_path(subject: str) -> str:
    return quote(subject, safe="")


def call(method: str, url: str, path: str, body: Any = None, **params: Any) -> requests.Response:
    """One raw request; ``body`` is sent as JSON when given."""
    data = None if body is None else json.dumps(body)
    return requests.request(
        method, f"{url}{path}", data=data, headers=HEADERS, params=params or None, timeout=30
    )


def register(url: str, subject: str, schema: str) -> requests.Response:
    return call("POST", url, f"/subjects/{subject_path(subject)}/versions", {"schema": schema})


def set_level(url: str, subject: str, level: str) -> None:
    response = call("PUT", url, f"/config/{subject_path(subject)}", {"compatibility": level})
    assert response.status_code == 200, response.text


def error_code(response: requests.Response) -> int:
    code: int = response.json()["error_code"]
    return code
