"""The demo: its source databases (``studio``, ``content``) seeded from ``demo/*.sql``, and a
generator that keeps changing them (:mod:`datamesh.demo.generator`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from datamesh.endpoints import PROJECT_ROOT

DEMO_SQL_DIR = PROJECT_ROOT / "demo"


def database_dsn(server_dsn: str, database: str) -> str:
    """The same server DSN pointing at another database."""
    parts = urlsplit(server_dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def load_demo(server_dsn: str, sql_dir: Path = DEMO_SQL_DIR) -> list[str]:
    """Create each ``<database>.sql``'s database if missing and run the file; return the names."""
    loaded = []
    for sql_file in sorted(sql_dir.glob("*.sql")):
        database = sql_file.stem
        admin = psycopg2.connect(server_dsn)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
        admin.close()
        with psycopg2.connect(database_dsn(server_dsn, database)) as conn, conn.cursor() as cur:
            cur.execute(sql_file.read_text())
        conn.close()
        loaded.append(database)
    return loaded
