"""Platform-side schema registry client: levels, verbose compatibility checks, registration.

Built on confluent-kafka's ``SchemaRegistryClient`` (the maintained client, works with Confluent,
Karapace and Apicurio's ccompat API); the verbose compatibility call and subject levels go over
plain REST because the client does not expose the ``verbose`` reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from datamesh.endpoints import registry_user_info
from datamesh.errors import TerminalError, TransientError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SUBJECT_NOT_FOUND = 40401
NO_SUBJECT_LEVEL = 40408


class IncompatibleSchema(TerminalError):
    """The registry refused a schema under the subject's compatibility level."""

    def __init__(self, subject: str, level: str, reasons: list[str], fix: str) -> None:
        self.subject = subject
        self.level = level
        self.reasons = reasons
        super().__init__(
            f'Schema for "{subject}" is not {level} compatible with the registered '
            f"version: {'; '.join(reasons) or 'no reason given'}",
            fix=fix,
        )


@dataclass(frozen=True)
class Registered:
    """A registered schema version."""

    subject: str
    id: int
    version: int
    schema: dict[str, Any]


class SchemaClient:
    """One registry, addressed by URL; credentials (``user:password``) given, else from
    ``MESH_SCHEMA_REGISTRY_USER_INFO``, else none."""

    def __init__(self, url: str, basic_auth: str | None = None) -> None:
        self.url = url.rstrip("/")
        basic_auth = basic_auth or registry_user_info()
        conf: dict[str, Any] = {"url": self.url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        user, _, password = (basic_auth or "").partition(":")
        self._auth = (user, password) if basic_auth else None
        self.client = SchemaRegistryClient(conf)

    def latest(self, subject: str) -> Registered | None:
        """The latest version of ``subject`` or None when the subject does not exist.

        Read fresh every time (confluent-kafka's client caches "latest" for its lifetime unless
        given a TTL, and a schema change upstream must be seen by the next call).
        """
        resp = self._rest("GET", f"/subjects/{subject}/versions/latest")
        if resp.status_code == 404:
            return None
        _raise_for(resp, f'read subject "{subject}"')
        body = resp.json()
        return Registered(
            subject, int(body["id"]), int(body["version"]), json.loads(body["schema"])
        )

    def by_id(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id`` (cached by the client)."""
        try:
            found = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            raise _wrap(f"read schema id {schema_id}", exc) from exc
        return dict(json.loads(found.schema_str or "null"))

    def level(self, subject: str) -> str | None:
        """The subject's own compatibility level (None when it follows the global one)."""
        resp = self._rest("GET", f"/config/{subject}")
        if resp.status_code == 404:
            return None
        return str(resp.json().get("compatibilityLevel"))

    def set_level(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (idempotent)."""
        self._rest("PUT", f"/config/{subject}", {"compatibility": level}, check=True)

    def check(self, subject: str, schema: dict[str, Any]) -> list[str]:
        """Reasons why ``schema`` is incompatible with the subject's latest version ([] = ok)."""
        body = {"schema": json.dumps(schema), "schemaType": "AVRO"}
        resp = self._rest(
            "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true", body
        )
        if resp.status_code == 404:  # nothing registered yet: anything is compatible
            return []
        _raise_for(resp, f'check "{subject}"')
        data = resp.json()
        return [] if data.get("is_compatible") else [str(m) for m in data.get("messages", [])]

    def register(self, subject: str, schema: dict[str, Any]) -> Registered:
        """Register ``schema`` (same schema → same id, no new version)."""
        try:
            schema_id = self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
            found = self.client.lookup_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except SchemaRegistryError as exc:
            raise _wrap(f'register "{subject}"', exc) from exc
        return Registered(subject, schema_id, int(found.version or 0), schema)

    def _rest(
        self, method: str, path: str, body: dict[str, Any] | None = None, check: bool = False
    ) -> requests.Response:
        try:
            resp = requests.request(
                method,
                f"{self.url}{path}",
                json=body,
                auth=self._auth,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=15,
            )
        except requests.RequestException as exc:
            raise TransientError(
                f"schema registry {self.url} did not answer: {exc}",
                fix="run `mesh up` or check MESH_SCHEMA_REGISTRY_URL",
            ) from exc
        if check:
            _raise_for(resp, f"{method} {path}")
        return resp


def _raise_for(resp: requests.Response, action: str) -> None:
    if resp.status_code < 400:
        return
    try:
        message = resp.json().get("message", resp.text)
    except ValueError:
        message = resp.text
    error = TransientError if resp.status_code >= 500 else TerminalError
    raise error(
        f"schema registry refused to {action}: HTTP {resp.status_code}: {message}",
        fix="see the registry's message",
    )


def _wrap(action: str, exc: SchemaRegistryError) -> TerminalError | TransientError:
    error = TransientError if (exc.http_status_code or 0) >= 500 else TerminalError
    return error(
        f"schema registry refused to {action}: {exc.error_message} "
        f"(HTTP {exc.http_status_code}, code {exc.error_code})",
        fix="see the registry's message",
    )
