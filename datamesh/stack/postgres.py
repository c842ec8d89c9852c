"""Embedded PostgreSQL 15: a private cluster (``wal_level=logical``) from Debian's binaries.

Authentication is ``trust`` on 127.0.0.1 only: this cluster is a local development and test
fixture bound to loopback. Point ``MESH_POSTGRES_DSN`` at a real server for anything else.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

from datamesh import endpoints
from datamesh.endpoints import Record
from datamesh.errors import StackError
from datamesh.process import alive, log_tail, stop_pid
from datamesh.stack.component import Component

PG_BIN_CANDIDATES = (Path("/usr/lib/postgresql/15/bin"),)
SERVICE_USER = "postgres"  # initdb and postgres refuse to run as root
CLUSTERS_DIR = "mesh-clusters"  # under the service user's home: clusters of root's mesh homes
CLUSTER_LINK = "cluster"  # <MESH_HOME>/postgres/cluster -> the cluster directory (root only)
OWNER_FILE = "mesh-link"  # in a cluster directory: the path of the link that claims it
ORPHAN_GRACE_S = 300.0  # a cluster younger than this may be waiting for its link: kept

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
    override = endpoints.setting(endpoints.PG_BIN_VAR)
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
    """PostgreSQL server; endpoint is a DSN ``postgresql://postgres@127.0.0.1:<port>/postgres``.

    Its cluster directory (``data/``, the socket directory ``run/`` and ``postgres.log``) is
    ``<MESH_HOME>/postgres`` when mesh runs as a normal user. As root the server runs as the
    ``postgres`` user, who may not be able to reach ``MESH_HOME`` (a mode-0700 home directory,
    a ``mktemp -d`` directory): the cluster then lives in a directory of its own under that
    user's home (``~postgres/mesh-clusters/<name>-<random>``), which ``<MESH_HOME>/postgres/
    cluster`` links to. A cluster whose link is gone (``rm -rf .mesh``, a deleted temporary
    home) is removed by the next start, once its server is no longer running.
    """

    name = "postgres"
    status_key = "postgres_dsn"
    deadline_s = 60.0
    fix = "read the log; a stale postmaster.pid or a port in use are the usual causes"

    def start(self) -> Record:
        cluster = self._prepare_dirs()
        data = cluster / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        (port,) = self.ports(["SQL"])
        self._configure(data, port, cluster / "run")
        self._run(["pg_ctl", "-D", str(data), "-l", str(self.log_path()), "start"], wait=False)
        return Record(
            self.name,
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            [],
            [port],
            str(self.log_path()),
            extra={"data_dir": str(data)},
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

    def cluster_dir(self) -> Path:
        """Where ``data/``, ``run/`` and ``postgres.log`` are: the target of the ``cluster``
        link (root), else ``<MESH_HOME>/postgres``."""
        link = self.home / CLUSTER_LINK
        return Path(os.readlink(link)) if link.is_symlink() else self.home

    def log_path(self) -> Path:
        return self.cluster_dir() / f"{self.name}.log"

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, read from ``postmaster.pid``."""
        return _postmaster_pid(self.cluster_dir() / "data")

    def stop(self, record: Record) -> None:
        pid = self.postmaster_pid()
        if not alive(pid):
            return
        self._run(
            ["pg_ctl", "-D", str(self.cluster_dir() / "data"), "-m", "fast", "-w", "stop"],
            wait=True,
            check=False,
        )
        stop_pid(pid)

    def _prepare_dirs(self) -> Path:
        """The cluster directory, created (with its ``run/``) where the server user reaches it."""
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            (self.home / "run").mkdir(exist_ok=True)
            return self.home
        user = pwd.getpwnam(SERVICE_USER)
        link = self.home / CLUSTER_LINK
        legacy = (self.home / "data" / "PG_VERSION").exists() and not link.is_symlink()
        if legacy and self._reachable(self.home):  # a cluster made under MESH_HOME before
            (self.home / "run").mkdir(exist_ok=True)
            return self.home
        parent = clusters_dir()
        cluster = self.cluster_dir()
        if not link.is_symlink() or not cluster.is_dir():
            link.unlink(missing_ok=True)
            cluster = Path(tempfile.mkdtemp(prefix=_slug(self.home) + "-", dir=parent))
            (cluster / OWNER_FILE).write_text(str(link))
            link.symlink_to(cluster)
        (cluster / "run").mkdir(exist_ok=True)
        for path in (cluster, cluster / OWNER_FILE, cluster / "run"):
            if path.stat().st_uid != user.pw_uid:
                os.chown(path, user.pw_uid, user.pw_gid)
        remove_orphan_clusters(parent, keep=cluster)
        return cluster

    def _reachable(self, path: Path) -> bool:
        probe = subprocess.run(
            ["runuser", "-u", SERVICE_USER, "--", "test", "-w", str(path)], capture_output=True
        )
        return probe.returncode == 0

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

    def _configure(self, data: Path, port: int, socket_dir: Path) -> None:
        conf = data / "postgresql.auto.conf"
        extra = SETTINGS.format(port=port, socket_dir=socket_dir)
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
        done = subprocess.run(  # cwd: the service user may not be able to read ours
            cmd, capture_output=True, text=True, timeout=120, start_new_session=True, cwd="/"
        )
        if check and done.returncode != 0:
            detail = (done.stdout + done.stderr).strip()
            raise StackError(
                self.name,
                f"{argv[0]} failed: {detail.splitlines()[-1:]}",
                f"{self.fix} ({self.log_path()})",
                detail + "\n" + log_tail(self.log_path()),
            )


def _postmaster_pid(data: Path) -> int | None:
    pid_file = data / "postmaster.pid"
    try:
        first = pid_file.read_text().splitlines()[:1]
    except OSError:
        return None
    return int(first[0]) if first and first[0].isdigit() else None


def clusters_dir() -> Path:
    """``~postgres/mesh-clusters``, created owned by the service user: where root's mesh keeps
    PostgreSQL clusters (and where a test running its own server as that user can, too)."""
    user = pwd.getpwnam(SERVICE_USER)
    home = Path(user.pw_dir)
    if not home.is_dir() or home.stat().st_uid != user.pw_uid:
        raise StackError(
            "postgres",
            f"the home directory of user {SERVICE_USER} ({home}) is missing or not its own: "
            "running as root, mesh keeps PostgreSQL's cluster there",
            f"create it owned by {SERVICE_USER} (Debian's postgresql package does), "
            "or run mesh as a non-root user",
        )
    parent = home / CLUSTERS_DIR
    parent.mkdir(mode=0o700, exist_ok=True)
    if parent.stat().st_uid != user.pw_uid:
        os.chown(parent, user.pw_uid, user.pw_gid)
    return parent


def _slug(home: Path) -> str:
    """A readable, short, unique-per-home prefix: ``<project>-<hash of the path>``."""
    mesh_home = home.parent
    project = mesh_home.parent.name if mesh_home.name == ".mesh" else mesh_home.name
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", project)[:20] or "mesh"
    return f"{readable}-{hashlib.sha256(str(mesh_home).encode()).hexdigest()[:8]}"


def remove_orphan_clusters(parent: Path, keep: Path | None = None) -> list[Path]:
    """Delete the cluster directories under ``parent`` that no link claims any more and whose
    server is not running; return them. The link may be gone because its ``MESH_HOME`` was
    removed (``make clean``, a test's temporary directory) or now points at another cluster.
    """
    removed: list[Path] = []
    for cluster in parent.iterdir() if parent.is_dir() else []:
        if cluster == keep or not cluster.is_dir():
            continue
        owner = cluster / OWNER_FILE
        try:
            link = Path(owner.read_text().strip())
            age = time.time() - owner.stat().st_mtime
        except OSError:
            continue  # not ours, or being created
        claimed = link.is_symlink() and Path(os.readlink(link)) == cluster
        if claimed or age < ORPHAN_GRACE_S or alive(_postmaster_pid(cluster / "data")):
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        removed.append(cluster)
    return removed
