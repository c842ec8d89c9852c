"""Durability and concurrency against real server processes: restarts, SIGKILL, parallel clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from .helpers import call, field, record, register, set_level, subject_path
from .process import RegistryProcess

NewSubject = Callable[[str], str]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[[], RegistryProcess]]:
    """Factory of servers on one data directory (each start is a new process); all stopped after."""
    started: list[RegistryProcess] = []

    def start() -> RegistryProcess:
        server = RegistryProcess(tmp_path / "data", tmp_path / f"server-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def distinct(tag: str, n: int) -> str:
    """A schema that differs from every other (tag, n) by its record name."""
    return record(field("id", "long"), field("payload", "string"), name=f"S_{tag}_{n}")


def versions_of(url: str, subject: str) -> list[int]:
    versions: list[int] = call("GET", url, f"/subjects/{subject_path(subject)}/versions").json()
    return versions


def test_restart_keeps_ids_versions_and_config(
    own_server: Callable[[], RegistryProcess], new_subject: NewSubject
) -> None:
    server = own_server()
    subjects = [new_subject("restart") for _ in range(3)]
    seen: dict[tuple[str, int], int] = {}
    for s_index, subject in enumerate(subjects):
        set_level(server.url, subject, "NONE")
        for n in range(3):
            schema_id = register(server.url, subject, distinct(f"r{s_index}", n)).json()["id"]
            seen[(subject, n + 1)] = schema_id
    shared_id = register(server.url, subjects[0], distinct("r1", 0)).json()["id"]
    assert shared_id == seen[(subjects[1], 1)]
    set_level(server.url, subjects[2], "FULL_TRANSITIVE")
    assert call("DELETE", server.url, f"/subjects/{subjects[1]}/versions/3").status_code == 200
    server.stop()

    again = own_server()
    for (subject, version), schema_id in seen.items():
        body = call(
            "GET", again.url, f"/subjects/{subject}/versions/{version}", deleted="true"
        ).json()
        assert body["id"] == schema_id
    assert versions_of(again.url, subjects[0]) == [1, 2, 3, 4]
    assert versions_of(again.url, subjects[1]) == [1, 2]
    level = call("GET", again.url, f"/config/{subjects[2]}").json()
    assert level == {"compatibilityLevel": "FULL_TRANSITIVE"}
    fresh = register(again.url, new_subject("restart"), distinct("after", 0)).json()["id"]
    assert fresh > max(seen.values())


def test_sigkill_loses_no_acknowledged_registration(
    own_server: Callable[[], RegistryProcess], new_subject: NewSubject
) -> None:
    server = own_server()
    subject = new_subject("crash")
    set_level(server.url, subject, "NONE")
    acked: list[tuple[str, int]] = []  # (schema, id) the server confirmed
    lock = threading.Lock()

    def writer(tag: str) -> None:
        for n in range(100_000):
            schema = distinct(tag, n)
            try:
                response = register(server.url, subject, schema)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 200:
                with lock:
                    acked.append((schema, response.json()["id"]))

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL while the writers are mid-request
    for thread in threads:
        thread.join(30)
    assert len(acked) >= 40

    again = own_server()
    for schema, schema_id in acked:
        found = call("POST", again.url, f"/subjects/{subject}", {"schema": schema})
        assert found.status_code == 200, found.text
        assert found.json()["id"] == schema_id
    versions = versions_of(again.url, subject)
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) >= len(acked)
    fresh = register(again.url, subject, distinct("after_crash", 0)).json()["id"]
    assert fresh > max(schema_id for _, schema_id in acked)


def test_concurrent_registrations_are_consistent(
    registry_url: str, new_subject: NewSubject
) -> None:
    threads_n, per_thread = 8, 5
    common = new_subject("common")
    own = [new_subject(f"own{t}") for t in range(threads_n)]
    for subject in [common, *own]:
        set_level(registry_url, subject, "NONE")
    shared_schema = record(field("k", "string"), name=f"Shared_{common.replace('-', '_')}")
    start = threading.Barrier(threads_n)
    results: dict[tuple[int, int], tuple[int, int]] = {}  # (t, k) -> (id in common, id in own)
    shared_ids: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        start.wait()
        for k in range(per_thread):
            schema = distinct(f"{common.replace('-', '_')}_{t}", k)
            responses = [
                register(registry_url, common, schema),
                register(registry_url, own[t], schema),
                register(registry_url, own[t], shared_schema),
                register(registry_url, common, shared_schema),
            ]
            with lock:
                if any(r.status_code != 200 for r in responses):
                    failures.extend(r.text for r in responses if r.status_code != 200)
                    return
                ids = [r.json()["id"] for r in responses]
                results[(t, k)] = (ids[0], ids[1])
                shared_ids.extend(ids[2:])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    assert len(set(shared_ids)) == 1, "one schema, one id, whatever the subject"
    assert all(in_common == in_own for in_common, in_own in results.values())
    distinct_ids = {in_common for in_common, _ in results.values()}
    assert len(distinct_ids) == threads_n * per_thread
    assert shared_ids[0] not in distinct_ids
    # Versions are gap-free: 40 distinct schemas plus the shared one exactly once.
    assert versions_of(registry_url, common) == list(range(1, threads_n * per_thread + 2))
    for subject in own:
        assert versions_of(registry_url, subject) == list(range(1, per_thread + 2))
