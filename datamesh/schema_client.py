"""The platform's one schema registry client: levels, verbose compatibility checks,
registration, reads — for the controller, the CDC connector, the Flink job builder and checks.

Built on confluent-kafka's ``SchemaRegistryClient`` (the maintained client, works with Confluent,
Karapace and Apicurio's ccompat API); the verbose compatibility call and subject levels go over
plain REST because the client does not expose the ``verbose`` reasons.

Errors mean what they say, in one place (:func:`_error`):

- :class:`RegistryUnavailable` (transient: retrying may help) only when the registry could not
  be reached or could not serve — a transport failure (refused, reset, timed out, DNS), HTTP
  502/503/504, or Confluent's 50002 (store timeout) / 50003 (primary unreachable);
- :class:`IncompatibleSchema` for HTTP 409 on registration;
- :class:`RegistryRefused` (terminal) for everything else: 401/403 (credentials), other 4xx, a
  plain 500 — the registry answered, and asking again gets the same answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

# The HTTP library confluent-kafka's client raises transport errors from (httpx2, or httpx where
# that is missing), chosen by the client itself: catching the same module's TransportError is
# the only way to tell "the registry did not answer" from a bug.
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError

from datamesh.endpoints import REGISTRY_USER_INFO_VAR, registry_user_info
from datamesh.errors import MeshError, TerminalError, TransientError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SUBJECT_NOT_FOUND = 40401
NO_SUBJECT_LEVEL = 40408
CONFLICT = 409
UNAVAILABLE_STATUS = frozenset({502, 503, 504})
UNAVAILABLE_CODES = frozenset({50002, 50003})  # store timeout, primary unreachable


class RegistryUnavailable(TransientError):
    """The registry could not be reached or could not serve; retrying may help."""


class RegistryRefused(TerminalError):
    """The registry answered with an error that asking again will not change."""

    def __init__(self, message: str, status: int | None, code: int | None, fix: str) -> None:
        self.status = status
        self.code = code
        super().__init__(message, fix=fix)


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
        self._http = _session(self.url)  # keep-alive: the controller reads thousands of subjects

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

    def latest_by_prefix(self, prefix: str) -> dict[str, Registered] | None:
        """The latest version of every subject starting with ``prefix``, in one request
        (Confluent's ``GET /schemas?latestOnly=true``); None when the registry does not offer
        it (older Confluent versions and other registries answer 404: read subject by subject).
        """
        resp = self._rest("GET", f"/schemas?subjectPrefix={quote(prefix)}&latestOnly=true")
        if resp.status_code == 404:
            return None
        _raise_for(resp, f'read the subjects under "{prefix}"')
        return {
            r["subject"]: Registered(
                r["subject"], int(r["id"]), int(r["version"]), json.loads(r["schema"])
            )
            for r in resp.json()
        }

    def by_id(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id`` (cached by the client)."""
        try:
            found = self.client.get_schema(schema_id)
        except (SchemaRegistryError, httpx.TransportError) as exc:
            _raise_client_error(f"read schema id {schema_id}", exc)
        return dict(json.loads(found.schema_str or "null"))

    def level(self, subject: str) -> str | None:
        """The subject's own compatibility level (None when it follows the global one)."""
        resp = self._rest("GET", f"/config/{subject}")
        if resp.status_code == 404:
            return None
        _raise_for(resp, f'read the level of "{subject}"')
        level = resp.json().get("compatibilityLevel")
        if not isinstance(level, str):
            raise RegistryRefused(
                f'schema registry answered the level of "{subject}" without one: {resp.text}',
                resp.status_code,
                None,
                fix="check that the URL points at a Confluent-compatible registry",
            )
        return level

    def set_level(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (idempotent)."""
        self._rest("PUT", f"/config/{subject}", {"compatibility": level}, check=True)

    def delete_subject(self, subject: str) -> None:
        """Soft-delete every version of ``subject`` and drop its own level (a retirement);
        a subject that does not exist is fine. Ids stay readable, as Confluent's registry keeps
        them, so records already written remain decodable."""
        resp = self._rest("DELETE", f"/subjects/{subject}")
        if resp.status_code != 404:
            _raise_for(resp, f'delete subject "{subject}"')
        resp = self._rest("DELETE", f"/config/{subject}")
        if resp.status_code != 404:
            _raise_for(resp, f'delete the level of "{subject}"')

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
        """Register ``schema`` (same schema → same id, no new version), with its version."""
        schema_id = self.register_id(subject, schema)
        try:
            found = self.client.lookup_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except (SchemaRegistryError, httpx.TransportError) as exc:
            _raise_client_error(f'look up "{subject}"', exc)
        return Registered(subject, schema_id, int(found.version or 0), schema)

    def register_id(self, subject: str, schema: dict[str, Any]) -> int:
        """Register ``schema`` and return its id, in one call (cached by the client: the same
        schema again costs nothing). :class:`IncompatibleSchema` on HTTP 409, with the
        registry's message as its reason."""
        try:
            return self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code == CONFLICT:
                raise IncompatibleSchema(
                    subject,
                    self._level_for_message(subject),
                    [str(exc.error_message)],
                    fix=f"make the change compatible, or migrate the consumers of {subject} "
                    f"and relax its level (PUT /config/{subject})",
                ) from exc
            _raise_client_error(f'register "{subject}"', exc)
        except httpx.TransportError as exc:
            _raise_client_error(f'register "{subject}"', exc)

    def _level_for_message(self, subject: str) -> str:
        """The subject's level for an error message; the refusal stands without it."""
        try:
            return self.level(subject) or "the global level's"
        except MeshError:
            return "its level's"

    def _rest(
        self, method: str, path: str, body: dict[str, Any] | None = None, check: bool = False
    ) -> requests.Response:
        try:
            resp = self._http.request(
                method,
                f"{self.url}{path}",
                json=body,
                auth=self._auth,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=15,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RegistryUnavailable(
                f"schema registry {self.url} did not answer: {exc}",
                fix="run `mesh up` or check MESH_SCHEMA_REGISTRY_URL",
            ) from exc
        if check:
            _raise_for(resp, f"{method} {path}")
        return resp


def _session(url: str) -> requests.Session:
    """A keep-alive session for one registry, with the environment's proxies, CA bundle and
    ``.netrc`` credentials for ``url`` read once: a session that trusts the environment reads
    them again on every request (scanning ``os.environ`` twice, looking for ``.netrc``) — a
    third of the client's time per request when the controller observes 1,000 products (bench
    area control_plane). Every request goes to the same host, so reading them once is the same.
    """
    session = requests.Session()
    env = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(env["proxies"])
    session.verify = env["verify"]
    session.cert = env["cert"]
    netrc = requests.utils.get_netrc_auth(url)
    if netrc is not None:
        session.auth = netrc  # used only when no explicit credentials are given, as before
    session.trust_env = False
    return session


def _raise_for(resp: requests.Response, action: str) -> None:
    """Raise what an HTTP error answer means (nothing below 400)."""
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
        message, code = str(body.get("message", resp.text)), body.get("error_code")
    except (ValueError, AttributeError):
        message, code = resp.text, None
    raise _error(action, resp.status_code, code if isinstance(code, int) else None, message)


def _raise_client_error(action: str, exc: SchemaRegistryError | httpx.TransportError) -> NoReturn:
    """Raise what an error of confluent-kafka's client means."""
    if isinstance(exc, httpx.TransportError):
        raise RegistryUnavailable(
            f"schema registry did not answer to {action}: {exc!r}",
            fix="run `mesh up` or check MESH_SCHEMA_REGISTRY_URL; retried",
        ) from exc
    raise _error(action, exc.http_status_code, exc.error_code, str(exc.error_message)) from exc


def _error(action: str, status: int | None, code: int | None, message: str) -> MeshError:
    """The one mapping from a registry answer to the platform's errors (see the module doc)."""
    detail = f"HTTP {status}" + (f", code {code}" if code else "") + f": {message}"
    if status in UNAVAILABLE_STATUS or code in UNAVAILABLE_CODES:
        return RegistryUnavailable(
            f"schema registry could not {action} ({detail})",
            fix="check the registry's health; retried",
        )
    if status in (401, 403):
        return RegistryRefused(
            f"schema registry refused the credentials to {action} ({detail})",
            status,
            code,
            fix=f"set {REGISTRY_USER_INFO_VAR} to user:password of a user allowed to {action}",
        )
    return RegistryRefused(
        f"schema registry refused to {action} ({detail})",
        status,
        code,
        fix="see the registry's message",
    )
