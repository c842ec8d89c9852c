"""A topic config change that never reaches the broker's metadata raises (it used to return as
if it had been applied). The admin client is faked: the broker's answers are what is tested."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from datamesh import kafka_admin
from datamesh.errors import TransientError
from datamesh.kafka_admin import TopicAdmin


class Entry:
    def __init__(self, value: str) -> None:
        self.value = value


class FakeAdmin:
    """Accepts every change; describe_configs reports ``shown`` (what the broker applied)."""

    def __init__(self, shown: dict[str, str]) -> None:
        self.shown = shown
        self.described = 0

    @staticmethod
    def _done(value: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(value)
        return future

    def incremental_alter_configs(self, resources: list[Any]) -> dict[Any, Future[Any]]:
        return {r: self._done(None) for r in resources}

    def describe_configs(self, resources: list[Any], **_: Any) -> dict[Any, Future[Any]]:
        self.described += 1
        entries = {k: Entry(v) for k, v in self.shown.items()}
        return {r: self._done(entries) for r in resources}


def _admin(fake: FakeAdmin) -> TopicAdmin:
    admin = TopicAdmin.__new__(TopicAdmin)
    admin._admin = fake  # type: ignore[assignment]  # the fake speaks the calls used here
    return admin


def test_a_change_the_broker_never_shows_raises_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka_admin, "TIMEOUT_S", 0.5)
    fake = FakeAdmin({"retention.ms": "604800000"})
    with pytest.raises(TransientError, match=r'alter topic "t": .* retention.ms=604800000'):
        _admin(fake).alter_config("t", {"retention.ms": "1000"})
    assert fake.described >= 2  # it waited, asking again


def test_a_change_the_broker_shows_returns() -> None:
    fake = FakeAdmin({"retention.ms": "1000", "cleanup.policy": "delete"})
    _admin(fake).alter_config("t", {"retention.ms": "1000"})
    assert fake.described == 1
