"""Facts about the machine a bench run measured on: cores, memory, and the versions of the
software under test (Python, Java, Kafka, Flink, PostgreSQL), each read from what the stack runs.

A fact that cannot be read is ``"unknown (<why>)"``, never a guess.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from datamesh import endpoints
from datamesh.errors import MeshError


def _jar_version(folder: Path, prefix: str) -> str:
    """The version in ``<prefix>-<version>.jar`` of ``folder``."""
    for jar in sorted(folder.glob(f"{prefix}-*.jar")):
        found = re.fullmatch(rf"{re.escape(prefix)}-(\d[\w.]*)\.jar", jar.name)
        if found:
            return found.group(1)
    raise FileNotFoundError(f"no {prefix}-<version>.jar in {folder}")


def java_version() -> str:
    """``java -version``'s version string (the JVM on PATH runs Kafka and Flink)."""
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    found = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    if found is None:
        raise ValueError(f"unexpected `java -version` output: {out.stderr[:200]!r}")
    return found.group(1)


def kafka_version() -> str:
    """The broker's version: the Maven-resolved ``kafka_2.13`` jar."""
    return _jar_version(endpoints.jars_dir() / "kafka", "kafka_2.13")


def flink_version() -> str:
    """The Flink distribution's version: its ``flink-dist`` jar."""
    from datamesh.stack.flink import pyflink_home

    return _jar_version(pyflink_home() / "lib", "flink-dist")


def postgres_version() -> str:
    """``postgres --version`` of the server binaries the stack runs."""
    from datamesh.stack.postgres import pg_bin

    out = subprocess.run(
        [str(pg_bin() / "postgres"), "--version"], capture_output=True, text=True, timeout=30
    )
    found = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
    if found is None:
        raise ValueError(f"unexpected `postgres --version` output: {out.stdout[:200]!r}")
    return found.group(1)


def _read(fact: Callable[[], str]) -> str:
    try:
        return fact()
    except (OSError, ValueError, subprocess.SubprocessError, MeshError) as exc:
        return f"unknown ({exc})"


def facts() -> dict[str, str | int | float]:
    """The machine facts recorded beside a run's figures."""
    return {
        "cores": os.cpu_count() or 0,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "java": _read(java_version),
        "kafka": _read(kafka_version),
        "flink": _read(flink_version),
        "postgresql": _read(postgres_version),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
