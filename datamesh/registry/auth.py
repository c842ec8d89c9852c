"""Optional HTTP basic authentication of the registry service (``MESH_REGISTRY_AUTH``).

Confluent Schema Registry's clients send ``basic.auth.user.info`` as an ``Authorization: Basic``
header; a request without the expected one gets 401 in the Confluent error shape. The
comparison is constant-time; the expected value never appears in a response or a log.
"""

from __future__ import annotations

import base64
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from datamesh.endpoints import REGISTRY_SERVER_AUTH_VAR

SERVER_AUTH_ENV = REGISTRY_SERVER_AUTH_VAR  # user:password the service demands; unset = open
UNAUTHORIZED = json.dumps({"error_code": 401, "message": "Unauthorized"}).encode()


class BasicAuth:
    """ASGI middleware admitting only requests carrying ``user_info`` as basic credentials."""

    def __init__(self, app: ASGIApp, user_info: str) -> None:
        self.app = app
        self._expected = b"Basic " + base64.b64encode(user_info.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/vnd.schemaregistry.v1+json"),
                    (b"www-authenticate", b'Basic realm="schema-registry"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
