"""Embedded PostgreSQL 15: a private cluster (``wal_level=logical``) from Debian's binaries.

Authentication is ``trust`` on 127.0.0.1 only: this cluster is a local development and test
fixture bound to loopback. Point ``MESH_POSTGRES_DSN`` at a real server for anything else.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg2

from datamesh.errors import StackError
from datamesh.stack.component import Component, Record
from datamesh.stack.process import alive, free_port, log_tail, stop_pid

PG_BIN_CANDIDATES = (Path("/usr/lib/postgresql/15/bin"),)
SERVICE_USER = "postgres"  # initdb and postgres refuse to run as root

SETTINGS = """
# --- written by mesh up ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200
shared_buffers = 128MB
"""


def pg_bin() -> Path:
    """Directory of the PostgreSQL 15 server binaries (``$MESH_PG_BIN`` overrides)."""
    override = os.environ.get("MESH_PG_BIN")
    candidates = (Path(override),) if override else PG_BIN_CANDIDATES
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    raise StackError(
        "postgres",
        "PostgreSQL 15 server binaries not found",
        "apt-get install postgresql-15 (or set MESH_PG_BIN to its bin directory)",
    )


class Postgres(Component):
    """PostgreSQL server; endpoint is a DSN ``postgresql://postgres@127.0.0.1:<port>/postgres``."""

    name = "postgres"
    status_key = "postgres_dsn"
    deadline_s = 60.0
    fix = "read the log; a stale postmaster.pid or a port in use are the usual causes"

    def start(self) -> Record:
        data = self.home / "data"
        self._prepare_dirs()
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        port = free_port()
        self._configure(data, port)
        self._run(["pg_ctl", "-D", str(data), "-l", str(self.log_path()), "start"], wait=False)
        return Record(
            self.name,
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            [],
            [port],
            str(self.log_path()),
        )

    def ready(self, endpoint: str) -> bool:
        try:
            with psycopg2.connect(endpoint, connect_timeout=2) as conn, conn.cursor() as cur:
                cur.execute("SHOW wal_level")
                row = cur.fetchone()
            conn.close()
            return row is not None and row[0] == "logical"
        except psycopg2.OperationalError:
            return False

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, read from ``postmaster.pid``."""
        pid_file = self.home / "data" / "postmaster.pid"
        if not pid_file.exists():
            return None
        first = pid_file.read_text().splitlines()[:1]
        return int(first[0]) if first and first[0].isdigit() else None

    def stop(self, record: Record) -> None:
        pid = self.postmaster_pid()
        if not alive(pid):
            return
        self._run(
            ["pg_ctl", "-D", str(self.home / "data"), "-m", "fast", "-w", "stop"],
            wait=True,
            check=False,
        )
        stop_pid(pid)

    def _prepare_dirs(self) -> None:
        (self.home / "run").mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVICE_USER)
            for path in [self.home, *self.home.rglob("*")]:
                if path.stat().st_uid != user.pw_uid:
                    os.chown(path, user.pw_uid, user.pw_gid)
            probe = subprocess.run(
                ["runuser", "-u", SERVICE_USER, "--", "test", "-w", str(self.home)],
                capture_output=True,
            )
            if probe.returncode != 0:
                raise StackError(
                    self.name,
                    f"user {SERVICE_USER} cannot reach {self.home}",
                    "make every parent directory searchable (chmod o+x) or set "
                    "MESH_HOME to a directory under the project",
                )

    def _initdb(self, data: Path) -> None:
        self._run(
            [
                "initdb",
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            wait=True,
        )

    def _configure(self, data: Path, port: int) -> None:
        conf = data / "postgresql.auto.conf"
        extra = SETTINGS.format(port=port, socket_dir=self.home / "run")
        text = conf.read_text().split("# --- written by mesh up ---")[0].rstrip("\n")
        conf.write_text(text + "\n" + extra)

    def _run(self, argv: list[str], wait: bool, check: bool = True) -> None:
        cmd = [str(pg_bin() / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise StackError(
                    self.name,
                    "running as root and `runuser` is missing",
                    "run mesh as a non-root user or install util-linux",
                )
            cmd = [runuser, "-u", SERVICE_USER, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, start_new_session=True
        )
        if check and done.returncode != 0:
            detail = (done.stdout + done.stderr).strip()
            raise StackError(
                self.name,
                f"{argv[0]} failed: {detail.splitlines()[-1:]}",
                f"{self.fix} ({self.log_path()})",
                detail + "\n" + log_tail(self.log_path()),
            )
