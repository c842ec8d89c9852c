"""Run the schema registry: ``python -m datamesh.registry --port N --data-dir DIR``.

Binds 127.0.0.1 unless told otherwise. With ``MESH_REGISTRY_AUTH=user:password`` in its
environment every request must carry those basic credentials (clients send them as
``basic.auth.user.info``; the platform's from ``MESH_SCHEMA_REGISTRY_USER_INFO``); without it
there is no authentication. Logs go to stderr only, at WARNING; once the socket listens one
line announces the URL, so a supervisor can wait for it. ``--port 0`` picks a free port and the
announced URL carries the real one.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

import uvicorn

from datamesh import endpoints
from datamesh.registry.app import create_app
from datamesh.registry.auth import SERVER_AUTH_ENV
from datamesh.registry.errors import RegistryError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m datamesh.registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081; 0 = any)")
    parser.add_argument("--data-dir", type=Path, required=True, help="directory of the store")
    return parser.parse_args(argv)


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints the ready line right after its socket is bound."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
            url = f"http://{host}:{port}"
            print(f"schema registry listening on {url}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        app = create_app(args.data_dir, endpoints.setting(SERVER_AUTH_ENV))
    except (RegistryError, OSError) as exc:
        print(f"schema registry: cannot open {args.data_dir}: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on"
    )
    server = AnnouncingServer(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits with 3 when it cannot bind; it logged why
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
