"""The real embedded stack, started once per test session on free loopback ports.

Set ``MESH_KAFKA_BOOTSTRAP`` / ``MESH_POSTGRES_DSN`` / ``MESH_SCHEMA_REGISTRY_URL`` /
``MESH_FLINK_REST_URL`` to run against existing services instead; those are never started or
stopped. A service that cannot start fails the session — nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from secrets import token_urlsafe

import pytest

from datamesh import kafka_observer
from datamesh.endpoints import REGISTRY_USER_INFO_VAR, Record
from datamesh.kafka_config import SECURITY_ENV
from datamesh.stack import stack
from datamesh.stack.kafka import EMBEDDED_SASL_ENV
from datamesh.stack.paths import PROJECT_ROOT


@pytest.fixture(scope="session")
def mesh_home() -> Iterator[Path]:
    """A private work directory for this session's stack (``MESH_HOME``).

    It lives under the project's ``.mesh/`` (``make clean`` removes what a killed session left).
    A private directory would do as well: run as root, PostgreSQL keeps its cluster where the
    ``postgres`` user reaches it (``test_postgres_starts_with_mesh_home_in_a_private_directory``).
    """
    parent = PROJECT_ROOT / ".mesh" / "test-homes"
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="session-", dir=parent))
    home.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(home))
        # SASL credentials, as an operator exports them: the embedded broker then also serves a
        # SASL listener for this user, and Flink inherits the password variable (test_secrets).
        # Likewise registry credentials: every platform client sends them (the session's
        # registry is open), and Flink jobs read them from their environment (test_secrets).
        for var, value in (
            (SECURITY_ENV["sasl.username"], "mesh-test"),
            (SECURITY_ENV["sasl.password"], token_urlsafe(24)),
            (REGISTRY_USER_INFO_VAR, f"mesh-test:{token_urlsafe(24)}"),
        ):
            if not os.environ.get(var):
                mp.setenv(var, value)
        mp.setenv(EMBEDDED_SASL_ENV, "1")
        yield home
    shutil.rmtree(home, ignore_errors=True)


def up_or_down(progress: Callable[[str], None]) -> dict[str, Record]:
    """``stack.up``; when it fails halfway, ``stack.down`` stops what it had started already
    (a fixture whose set-up raises gets no teardown), then the failure is raised."""
    try:
        return stack.up(progress=progress)
    except BaseException as exc:
        try:
            leftovers = stack.down(progress=progress)
        except Exception as down_exc:  # keep the start-up failure as the one raised
            exc.add_note(f"mesh down after the failed mesh up failed too: {down_exc!r}")
        else:
            if leftovers:
                exc.add_note(f"ports still open after mesh down: {leftovers}")
        raise


@pytest.fixture(scope="session")
def mesh_stack(mesh_home: Path) -> Iterator[dict[str, Record]]:
    """``mesh up`` for the session (stopped again if it fails halfway); ``mesh down`` afterwards
    must leave no port open."""
    records = up_or_down(progress=lambda line: print(f"[stack] {line}"))
    yield records
    kafka_observer.reset()  # kept clients would retry the stopped broker until exit
    leftovers = stack.down(progress=lambda line: print(f"[stack] {line}"))
    assert not leftovers, f"ports still open after mesh down: {leftovers}"


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Factory of unique topic/product names so tests never depend on each other."""
    return lambda prefix: f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sasl_bootstrap(mesh_stack: dict[str, Record], monkeypatch: pytest.MonkeyPatch) -> str:
    """The embedded broker's SASL_PLAINTEXT listener; this test's clients speak SASL/PLAIN.

    Sets ``MESH_KAFKA_SECURITY_PROTOCOL`` / ``MESH_KAFKA_SASL_MECHANISM`` for the test (the
    session exported the username and password before ``mesh up``).
    """
    bootstrap = mesh_stack["kafka"].extra.get("sasl_bootstrap")
    assert bootstrap, (
        "the session's Kafka has no SASL listener: SASL tests need the embedded broker "
        "(unset MESH_KAFKA_BOOTSTRAP) started with MESH_KAFKA_EMBEDDED_SASL=1"
    )
    monkeypatch.setenv(SECURITY_ENV["security.protocol"], "SASL_PLAINTEXT")
    monkeypatch.setenv(SECURITY_ENV["sasl.mechanism"], "PLAIN")
    return bootstrap
