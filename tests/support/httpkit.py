"""A local HTTP backend for the front-door tests: what HAProxy balances in front of, with a
health endpoint that answers as told."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend:
    """A local HTTP server answering ``/`` with its name, and ``/healthz`` with ``health``."""

    def __init__(self, name: str, health: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = (outer.health, b"health") if self.path == "/healthz" else (200, name.encode())
                if self.path != "/healthz":
                    outer.served += 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

            def handle(self) -> None:
                with contextlib.suppress(ConnectionError):  # HAProxy's checks close once they read the status
                    super().handle()

        self.health, self.served = health, 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
