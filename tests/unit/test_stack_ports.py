"""A restarted component keeps its recorded ports when they are free (pure port choice)."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from datamesh.process import choose_ports, port_free, port_free_soon
from datamesh.stack.postgres import OWNER_FILE, remove_orphan_clusters


def _fresh(start: int = 50000) -> Callable[[], int]:
    counter = itertools.count(start)
    return lambda: next(counter)


def test_free_recorded_ports_are_reused_in_order() -> None:
    ports, notes = choose_ports(
        [9092, 9093, 9094], ["broker", "controller", "sasl"], is_free=lambda p: True, fresh=_fresh()
    )
    assert ports == [9092, 9093, 9094]
    assert notes == []


def test_a_taken_port_moves_and_says_so() -> None:
    ports, notes = choose_ports(
        [9092, 9093], ["broker", "controller"], is_free=lambda p: p != 9092, fresh=_fresh()
    )
    assert ports == [50000, 9093]
    assert notes == ["broker port 9092 was taken: now on 50000 (clients must switch)"]


def test_nothing_recorded_gives_fresh_ports_without_notes() -> None:
    ports, notes = choose_ports([], ["REST", "RPC", "blob"], is_free=lambda p: True, fresh=_fresh())
    assert ports == [50000, 50001, 50002]
    assert notes == []


def test_extra_roles_beyond_the_record_get_fresh_ports() -> None:
    # e.g. the SASL listener asked for after a start without it
    ports, notes = choose_ports(
        [9092, 9093], ["broker", "controller", "sasl"], is_free=lambda p: True, fresh=_fresh()
    )
    assert ports == [9092, 9093, 50000]
    assert notes == []


def test_a_fresh_port_never_takes_a_port_another_role_keeps() -> None:
    # The kernel may hand out a recorded port that is free: it must not serve two roles.
    fresh = iter([9093, 9093, 50000]).__next__
    ports, notes = choose_ports(
        [9092, 9093], ["broker", "controller"], is_free=lambda p: p != 9092, fresh=fresh
    )
    assert ports == [50000, 9093]
    assert len(set(ports)) == 2
    assert notes == ["broker port 9092 was taken: now on 50000 (clients must switch)"]


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_free(port)
    assert port_free(port)


def _cluster(parent: Path, name: str, link: Path, age_s: float) -> Path:
    cluster = parent / name
    (cluster / "data").mkdir(parents=True)
    owner = cluster / OWNER_FILE
    owner.write_text(str(link))
    old = time.time() - age_s
    os.utime(owner, (old, old))
    return cluster


def test_a_recorded_port_released_a_moment_later_is_kept() -> None:
    """A killed server's port can stay held for a moment (closing sockets, a client that got it
    as its ephemeral port): the restart waits for it rather than moving its clients' address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    threading.Timer(0.5, listener.close).start()
    started = time.monotonic()
    assert port_free_soon(port, seconds=10)
    assert 0.3 < time.monotonic() - started < 5


def test_a_port_held_past_the_grace_is_reported_taken() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        started = time.monotonic()
        assert not port_free_soon(listener.getsockname()[1], seconds=0.5)
        assert time.monotonic() - started >= 0.5


def test_orphan_postgres_clusters_are_removed_and_claimed_ones_kept(tmp_path: Path) -> None:
    parent, homes = tmp_path / "clusters", tmp_path / "homes"
    homes.mkdir()
    claimed = _cluster(parent, "kept", homes / "a-cluster", age_s=3600)
    (homes / "a-cluster").symlink_to(claimed)
    gone_home = _cluster(parent, "home-deleted", homes / "deleted" / "cluster", age_s=3600)
    relinked = _cluster(parent, "relinked", homes / "b-cluster", age_s=3600)
    (homes / "b-cluster").symlink_to(parent / "elsewhere")
    young = _cluster(parent, "young", homes / "c-cluster", age_s=1)
    running = _cluster(parent, "running", homes / "d-cluster", age_s=3600)
    (running / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    (parent / "not-ours").mkdir()

    removed = remove_orphan_clusters(parent)

    assert sorted(removed) == sorted([gone_home, relinked])
    assert claimed.exists() and young.exists() and running.exists()
    assert (parent / "not-ours").exists()
