"""A fault-injecting HTTP proxy for the sync tests: it sits on loopback between a
sync engine (or a ``resolve-sync`` process) and the test server, forwards every
request, and on demand

- ``drop_response``: forwards the request, lets the server answer (and commit), then
  closes the connection without a word: the client sees no answer;
- ``drop_request``: closes the connection without forwarding anything;
- ``duplicate``: sends the request to the server twice and answers with the second
  answer (a replay the server must recognise);
- ``hold``: forwards the request, then waits (``held`` is set once the server has
  answered) until ``release`` is set, and drops the answer: the test kills the client
  in between;
- ``hold_request``: the same, but before the request reaches the server (which never
  sees it);
- ``down()``: refuses connections (the listening socket is closed; connections already
  open are cut) until the block ends, as a server being restarted does.

Faults are queued per path prefix and used once each, in order."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"}
#: request headers not forwarded: the proxy reads answers whole, uncompressed
_DROP_REQUEST = _HOP | {"accept-encoding"}
_DROP_RESPONSE = _HOP | {"content-encoding", "date", "server"}
ACTIONS = ("drop_response", "drop_request", "duplicate", "hold", "hold_request")


@dataclass
class Fault:
    path: str
    action: str
    #: for ``hold``: set when the server has answered; set ``release`` to go on
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Seen:
    method: str
    path: str
    status: int | None
    action: str | None


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._http = httpx.Client(base_url=upstream, timeout=60)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.refusing = False
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ control

    def fault(self, path: str, action: str) -> Fault:
        """Queue one fault for the next request whose path starts with ``path``."""
        assert action in ACTIONS, action
        fault = Fault(path, action)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> list[Fault]:
        """Forget faults not used yet (and return them)."""
        with self._lock:
            left, self._faults = self._faults, []
        for f in left:
            f.release.set()
        return left

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if path.startswith(f.path):
                    return self._faults.pop(i)
        return None

    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.refusing = False
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse connections from now on: the listening socket is closed, open
        connections are cut at their next request."""
        self.refusing = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        self.clear()
        self.stop()
        self._http.close()

    def count(self, path: str, *, answered: bool | None = None) -> int:
        """Requests seen for a path prefix (``answered``: those the server answered)."""
        return sum(
            1
            for s in self.seen
            if s.path.startswith(path) and (answered is None or (s.status is not None) == answered)
        )


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _forward(self) -> None:
        proxy = self.owner
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if proxy.refusing:
            self._cut()
            return
        path = self.path.split("?", 1)[0]
        fault = proxy._take(path)
        action = fault.action if fault else None
        if action in ("drop_request", "hold_request"):
            assert fault is not None
            proxy.seen.append(Seen(self.command, path, None, action))
            if action == "hold_request":
                fault.held.set()
                fault.release.wait(timeout=60)
            self._cut()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROP_REQUEST}
        response = proxy._http.request(self.command, self.path, headers=headers, content=body)
        if action == "duplicate":
            proxy.seen.append(Seen(self.command, path, response.status_code, action))
            response = proxy._http.request(self.command, self.path, headers=headers, content=body)
        proxy.seen.append(Seen(self.command, path, response.status_code, action))
        if action == "hold":
            assert fault is not None
            fault.held.set()
            fault.release.wait(timeout=60)
            self._cut()
            return
        if action == "drop_response" or proxy.refusing:
            self._cut()
            return
        content = response.content
        self.send_response(response.status_code)
        for name, value in response.headers.multi_items():
            if name.lower() not in _DROP_RESPONSE:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        self.wfile.flush()

    def _cut(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
