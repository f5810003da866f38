"""One pure-ASGI middleware for what every response needs.

Request id, security headers, rate-limit headers, the request body cap and the
access log. Pure ASGI (not BaseHTTPMiddleware) because it wraps every request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from common.errors import ErrorCode
from server.core.context import client_ip_var, request_id_var, user_agent_var

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("server.access")


class BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it instead of wrapping it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def security_headers_for(path: str) -> dict[str, str]:
    """The headers a response to ``path`` carries (also reported by /api/security/settings)."""
    headers = {k.decode(): v.decode() for k, v in SECURITY_HEADERS}
    headers["content-security-policy"] = DOCS_CSP if path.startswith("/api/docs") else API_CSP
    return headers


async def _send_error(send: Send, status: int, code: str, message: str, request_id: str) -> None:
    """An error in the shape of ``server.core.handlers``, sent without the application."""
    body = json.dumps(
        {"error": {"code": code, "message": message, "details": None, "requestId": request_id}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestEnvelopeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        own_body_limit_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: exact paths whose route limits its own body (file uploads): not capped here
        self.own_body_limit_paths = own_body_limit_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_var.set(request_id)
        client = scope.get("client")
        client_ip_var.set(client[0] if client else None)
        user_agent_var.set(headers.get(b"user-agent", b"").decode("latin-1")[:300] or None)
        started = time.perf_counter()
        status_holder = [0]
        path: str = scope.get("path", "")

        limit = self.max_body_bytes
        capped = path not in self.own_body_limit_paths
        declared = headers.get(b"content-length")
        too_large = capped and declared is not None and declared.isdigit() and int(declared) > limit
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            if too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                out = list(message.get("headers") or [])
                present = {k.lower() for k, _ in out}
                out.append((b"x-request-id", request_id.encode()))
                for key, value in SECURITY_HEADERS:
                    if key not in present:
                        out.append((key, value))
                if b"content-security-policy" not in present:
                    csp = DOCS_CSP if path.startswith("/api/docs") else API_CSP
                    out.append((b"content-security-policy", csp.encode()))
                if b"cache-control" not in present and path.startswith("/api/"):
                    out.append((b"cache-control", b"no-store"))
                rate = scope.get("state", {}).get("rate_limit")
                if rate is not None:
                    for key, value in rate.headers().items():
                        if key.lower().encode() not in present:
                            out.append((key.lower().encode(), value.encode()))
                message["headers"] = out
            await send(message)

        try:
            if too_large:
                # Refused before any route runs, also one that never reads its body.
                await _send_error(
                    send_with_headers,
                    413,
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"Request body is larger than {limit} bytes",
                    request_id,
                )
            else:
                await self.app(scope, capped_receive if capped else receive, send_with_headers)
        finally:
            state = scope.get("state", {})
            caller = state.get("caller")
            org = state.get("organization_id")
            access_log.info(
                "%s %s %s",
                scope.get("method"),
                path,
                status_holder[0],
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": path,
                    "status": status_holder[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": str(caller.user_id) if caller else None,
                    "organization_id": str(org) if org else None,
                    "client_ip": client[0] if client else None,
                },
            )
