"""Schema registry throughput: registrations/s and schema-id lookups/s.

``run(url)`` measures a running registry (ours or any Confluent-compatible one). Run as a script
(``python bench/registry_bench.py [URL]``) it starts a throw-away local server when no URL is
given and prints the numbers as JSON. Every loop is bounded in count and in time, and all
traffic goes to the given URL (loopback for the local server).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from confluent_kafka.schema_registry import SchemaRegistryClient

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
READY = re.compile(r"schema registry listening on (http://\S+)")


def _rate(count_max: int, seconds_max: float, step: Callable[[int], None]) -> float:
    """Call ``step(i)`` up to ``count_max`` times or for ``seconds_max``; return calls/s."""
    start = time.perf_counter()
    done = 0
    while done < count_max and time.perf_counter() - start < seconds_max:
        step(done)
        done += 1
    return done / (time.perf_counter() - start)


def _schema(tag: str, n: int) -> str:
    fields = [{"name": "id", "type": "long"}, {"name": "v", "type": "string"}]
    return json.dumps({"type": "record", "name": f"Bench_{tag}_{n}", "fields": fields})


def run(
    url: str, registrations: int = 300, lookups: int = 2000, seconds: float = 10.0
) -> dict[str, float]:
    """Measure ``url``: distinct new registrations/s, client-cached and HTTP id lookups/s."""
    url = url.rstrip("/")
    tag = uuid.uuid4().hex[:10]
    subject = f"bench-{tag}"
    session = requests.Session()
    session.headers.update({"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE})
    # NONE: every schema here is unrelated to the previous one; we time storage, not refusal.
    session.put(f"{url}/config/{subject}", json={"compatibility": "NONE"}, timeout=30)
    ids: list[int] = []

    def register(n: int) -> None:
        response = session.post(
            f"{url}/subjects/{subject}/versions",
            data=json.dumps({"schema": _schema(tag, n)}),
            timeout=30,
        )
        response.raise_for_status()
        ids.append(response.json()["id"])

    registrations_per_s = _rate(registrations, seconds, register)
    client = SchemaRegistryClient({"url": url})
    client.get_schema(ids[0])  # warm the client cache; the loop below never leaves the process

    def cached_lookup(n: int) -> None:
        client.get_schema(ids[0])

    cached_per_s = _rate(lookups * 50, seconds, cached_lookup)

    def http_lookup(n: int) -> None:
        response = session.get(f"{url}/schemas/ids/{ids[n % len(ids)]}", timeout=30)
        response.raise_for_status()

    http_per_s = _rate(lookups, seconds, http_lookup)
    session.close()
    return {
        "registrations_per_s": round(registrations_per_s, 1),
        "id_lookups_cached_per_s": round(cached_per_s, 1),
        "id_lookups_http_per_s": round(http_per_s, 1),
    }


@contextmanager
def local_server(timeout: float = 30.0) -> Iterator[str]:
    """A temporary registry on a free loopback port with a temporary data dir; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        log_path = Path(tmp) / "server.log"
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "datamesh.registry",
                    "--port",
                    "0",
                    "--data-dir",
                    str(Path(tmp) / "data"),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                yield _wait_ready(proc, log_path, time.monotonic() + timeout)
            finally:
                proc.terminate()
                proc.wait(15)


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, deadline: float) -> str:
    while time.monotonic() < deadline and proc.poll() is None:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        time.sleep(0.05)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise TimeoutError(f"registry did not start:\n{tail}")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(json.dumps(run(argv[1]), indent=2))
        return 0
    with local_server() as url:
        print(json.dumps(run(url), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
