"""A threaded HTTP server bound before the app exists, so the app's config can name its own port.

The demo and the transcript replayer both need ``wecom.api_base_url`` to point at the server that
serves the fake API; with ``port=0`` the port is only known once the socket is bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Deferred:
    """A WSGI app that answers 503 until the real app is set."""

    def __init__(self) -> None:
        self.app: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"starting"]
        return self.app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request: the console polls constantly, and API URLs carry tokens."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LiveServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._target = _Deferred()
        self.server: BaseWSGIServer = make_server(host, port, self._target, threaded=True,
                                                  request_handler=_QuietHandler)
        self.host = host
        self.port = int(self.server.server_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def set_app(self, app: WSGIApp) -> None:
        self._target.app = app

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
