"""How observe reads the registry: latest versions a domain at a time when the registry offers
``GET /schemas?latestOnly=true``, subject by subject when it does not; the registry client reads
the environment's proxy settings once, with the same result requests gives per request."""

from __future__ import annotations

import pytest

from datamesh.control.observe import _latest_in_bulk
from datamesh.schema_client import Registered, SchemaClient, _session


class BulkRegistry(SchemaClient):
    """Answers ``latest_by_prefix`` from a dict; None for a prefix in ``missing``."""

    def __init__(self, subjects: dict[str, int], missing: frozenset[str] = frozenset()) -> None:
        self.subjects, self.missing, self.asked = subjects, missing, list[str]()

    def latest_by_prefix(self, prefix: str) -> dict[str, Registered] | None:
        self.asked.append(prefix)
        if prefix in self.missing:
            return None
        return {
            s: Registered(s, v, v, {"type": "string"})
            for s, v in self.subjects.items()
            if s.startswith(prefix)
        }


SUBJECTS = {"a.x-key": 1, "a.x-value": 2, "b.public.t-value": 3, "c.y-value": 4}


@pytest.mark.parametrize(
    ("wanted", "missing", "asked", "found"),
    [
        # one request per domain; subjects not wanted but under the prefix come along
        (
            ["a.x-key", "b.public.t-value"],
            set(),
            ["a.", "b."],
            ["a.x-key", "a.x-value", "b.public.t-value"],
        ),
        # a wanted subject with no version is simply absent
        (["a.none-value"], set(), ["a."], ["a.x-key", "a.x-value"]),
        # a subject without a dot is covered by no prefix: left to be read alone
        (["plain"], set(), [], []),
        # no bulk read: None, so every subject is read alone
        (["a.x-key", "c.y-value"], {"c."}, ["a.", "c."], None),
    ],
)
def test_latest_in_bulk(
    wanted: list[str], missing: set[str], asked: list[str], found: list[str] | None
) -> None:
    registry = BulkRegistry(SUBJECTS, frozenset(missing))
    result = _latest_in_bulk(registry, wanted)
    assert registry.asked == asked
    assert (sorted(result) if result is not None else None) == found


@pytest.mark.parametrize(
    ("env", "proxies"),
    [
        ({}, {}),
        ({"HTTP_PROXY": "http://proxy:3128"}, {"http": "http://proxy:3128"}),
        ({"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "registry"}, {}),
    ],
)
def test_session_reads_the_environment_once_like_requests(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], proxies: dict[str, str]
) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/mesh-ca.pem")
    session = _session("http://registry:8081")
    assert {k: v for k, v in session.proxies.items() if v} == proxies
    assert session.verify == "/etc/mesh-ca.pem"
    assert session.trust_env is False
