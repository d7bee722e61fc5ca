"""Expose any httpx transport (usually :class:`LocalOpenMeter`) over real HTTP/1.1 on a local port.

Why a server at all: the emulator is an in-process httpx transport, which is ideal for Python tests
but invisible to benchmarks that want a real socket and to clients written in other languages.
This module turns each HTTP request into an :class:`httpx.Request`, hands it to the transport's
``handle_request`` and writes the answer back, so the wire behaviour is exactly the transport's.

Why ``http.server.ThreadingHTTPServer`` and not asyncio + h11: measured on our 2-core machines
(8 keep-alive connections from another process, Local OpenMeter behind the server), a thread per
connection served ~1550 entitlement reads/s and ~2700 event ingests/s, an asyncio + h11 loop
calling the transport inline ~1270 and ~1900 (and ~960 and ~1440 via a thread pool). The
transport's own work dominates, and the stdlib server needs less code and no event loop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx
from typing_extensions import Self

__all__ = ["LoopbackServer", "serve_in_thread"]

logger = logging.getLogger("openmeter_billing")

# Headers that describe one hop of the connection, not the message (RFC 9110 section 7.6.1),
# plus Content-Length, which we always recompute from the bytes we actually send.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_PROBLEM_500 = b'{"type":"about:blank","title":"Internal Server Error","status":500}'
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
# A cap on one request body, so a bad Content-Length cannot make us allocate gigabytes.
_MAX_BODY = 64 * 1024 * 1024


class _BadRequest(Exception):
    """A request we cannot turn into an ``httpx.Request`` (answered with 400 or 411)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    """The socket side: one daemon thread per connection, and a registry of open connections.

    The registry lets :meth:`LoopbackServer.shutdown` close idle keep-alive connections, whose
    threads would otherwise wait for a next request that never comes.
    """

    allow_reuse_address = True  # SO_REUSEADDR: a restart can bind the port again at once
    daemon_threads = True
    request_queue_size = 128  # the benchmark opens pools; the default backlog of 5 is too small

    def __init__(
        self,
        address: tuple[str, int],
        transport: httpx.BaseTransport,
        log_requests: bool,
        idle_timeout: float,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.transport = transport
        self.log_requests = log_requests
        self.idle_timeout = idle_timeout
        self.accepted = 0
        self.base_url = ""  # set once bound, when the port is known
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self.accepted += 1
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # shutdown() wakes a thread blocked in recv(); close() alone would not.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        # The default prints a traceback to stderr. A peer hanging up is routine; anything
        # else is a bug worth one log line. Neither may stop the server.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("Loopback server: connection from %s dropped: %r", client_address, error)
        else:
            logger.exception("Loopback server: error on connection from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a transport call; the connection thread loops over requests."""

    protocol_version = "HTTP/1.1"  # keep-alive: the benchmark's pool reuses connections
    disable_nagle_algorithm = True  # small responses must not wait for a delayed ACK
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Idle or half-sent connections time out and are closed, freeing their thread.
        self.connection.settimeout(self.server.idle_timeout)
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self) -> None:
        try:
            request = self._to_httpx_request()
        except _BadRequest as error:
            # The rest of the stream cannot be trusted to start at a request boundary.
            self.close_connection = True
            logger.debug("Loopback server: %s %s refused: %s", self.command, self.path, error)
            problem = {
                "type": "about:blank",
                "title": self.responses[error.status][0],
                "status": error.status,
                "detail": str(error),
            }
            body = json.dumps(problem).encode()
            self._write(error.status, [(b"Content-Type", b"application/problem+json")], body)
            return
        answer = self._call_transport(request)
        if answer is None:
            self._drop()
            return
        self._write(*answer)

    def _drop(self) -> None:
        """Close the connection without an answer, as a crashed or overloaded server does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (PROPFIND, BREW, ...) goes to the transport too, which answers 405
        # with Allow for a served path; the stdlib would answer a 501 HTML page.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(
        self,
        code: int,
        message: str | None = None,
        explain: str | None = None,  # noqa: ARG002 (the stdlib's HTML explanation)
    ) -> None:
        """Errors the stdlib detects itself (a bad request line, a 100 KB header, too many
        headers) are answered as problem+json like every other error, not as an HTML page."""
        self.close_connection = True
        title = self.responses.get(code, ("Error",))[0]
        problem = {
            "type": "about:blank",
            "title": title,
            "status": code,
            "detail": message or title,
        }
        body = json.dumps(problem).encode()
        if not hasattr(self, "command"):
            self.command = ""  # the request line was unreadable
        with contextlib.suppress(OSError):
            self._write(code, [(b"Content-Type", b"application/problem+json")], body)

    # -- request ------------------------------------------------------------------------------

    def _to_httpx_request(self) -> httpx.Request:
        body = self._read_body()
        # Header bytes are kept as received: http.client decoded them as latin-1.
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
            if name.lower() != "transfer-encoding"
        ]
        if "transfer-encoding" in {name.lower() for name in self.headers}:
            headers.append((b"Content-Length", str(len(body)).encode()))
        try:
            target = self.path
            if not target.startswith("/"):
                # Absolute form (``GET http://host/path``), as proxies send: keep path and query.
                target = httpx.URL(target).raw_path.decode("ascii")
            url = httpx.URL(self.server.base_url + target)
        except (httpx.InvalidURL, UnicodeDecodeError) as error:
            raise _BadRequest(400, f"invalid request target {self.path!r}: {error}") from None
        return httpx.Request(self.command, url, headers=headers, content=body)

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _BadRequest(
                    411, f"Transfer-Encoding {encoding!r} unsupported; send Content-Length"
                )
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest(400, f"invalid Content-Length {raw!r}; send 0..{_MAX_BODY}")
        body = self.rfile.read(length)
        if len(body) < length:
            raise _BadRequest(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _BadRequest(400, f"invalid chunk size {line!r}") from None
            total += size
            if total > _MAX_BODY:
                raise _BadRequest(400, f"chunked body larger than {_MAX_BODY} bytes")
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers carry nothing we forward
        return b"".join(chunks)

    # -- response -----------------------------------------------------------------------------

    def _call_transport(
        self, request: httpx.Request
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The transport's answer; None when it raised a transport error (a dropped connection
        fault), which the client must see as a dropped connection too."""
        try:
            response = self.server.transport.handle_request(request)
            try:
                body = _raw_body(response)
            finally:
                response.close()
        except httpx.TransportError as error:
            logger.debug("Loopback server: dropping %s %s: %s", self.command, self.path, error)
            return None
        except Exception:
            logger.exception("Loopback server: transport failed on %s %s", self.command, self.path)
            return 500, [(b"Content-Type", b"application/problem+json")], _PROBLEM_500
        headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        return response.status_code, headers, body

    def _write(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
        lines.extend(name + b": " + value for name, value in headers)
        # 1xx and 204 carry neither a body nor Content-Length; 304 carries no body (RFC 9110).
        if status < 200 or status == 204:
            body = b""
        else:
            lines.append(b"Content-Length: " + str(len(body)).encode())
            if status == 304 or self.command == "HEAD":
                body = b""
        if self.close_connection:
            lines.append(b"Connection: close")
        # One write: headers and body leave in a single segment.
        self.wfile.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.log_request(status, len(body))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.log_requests:
            logger.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log_message(self, format: str, *args: Any) -> None:
        # Protocol errors (bad request lines, timeouts) go to the library's logger, not stderr.
        logger.debug("Loopback server: " + format, *args)


def _raw_body(response: httpx.Response) -> bytes:
    """The body bytes as the transport produced them (still content-encoded, if they were)."""
    stream = response.stream
    if isinstance(stream, httpx.ByteStream):
        # A response built with content= was read eagerly; the ByteStream still holds raw bytes.
        return b"".join(stream)
    return b"".join(response.iter_raw())


class LoopbackServer:
    """Serves a transport's routes over HTTP/1.1 with keep-alive on ``host:port``.

    The socket is bound in the constructor, so :attr:`url` is known (``port=0`` picks a free port)
    before any request. Use it as a context manager to serve from a daemon thread::

        with LoopbackServer(LocalOpenMeter(), port=0) as server:
            httpx.get(server.url + "/api/v1/meters")

    or call :meth:`serve_forever` to block (Ctrl-C stops it cleanly). Local OpenMeter has no
    authentication unless it was created with ``api_key=``, which is why any host but a loopback
    address logs a warning.

    Args:
        transport: Anything with ``handle_request(httpx.Request) -> httpx.Response``; it is called
            from one thread per connection, so it must be thread-safe.
        host: Address to bind; ``127.0.0.1`` by default.
        port: Port to bind; ``0`` picks a free one.
        log_requests: Log one line per request at INFO level (quiet by default).
        idle_timeout: Seconds a connection may stay silent (idle between requests, or in the
            middle of sending one) before it is closed and its thread freed.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport,
        host: str = "127.0.0.1",
        port: int = 8888,
        *,
        log_requests: bool = False,
        idle_timeout: float = 30.0,
    ) -> None:
        if not _is_loopback(host):
            logger.warning(
                "Loopback server binding %s: Local OpenMeter has no authentication unless it "
                "is created with api_key=...; anyone reaching %s:%s can read and change it",
                host,
                host,
                port,
            )
        self._httpd = _HTTPServer((host, port), transport, log_requests, idle_timeout)
        bound_port = self._httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url: str = f"http://{shown}:{bound_port}"
        """Base URL of the bound socket, e.g. ``http://127.0.0.1:8888``."""
        self._httpd.base_url = self.url
        self._lock = threading.Lock()
        self._serving = False
        self._stopped = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LoopbackServer(url={self.url!r})"

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server accepted so far (keep-alive keeps this low)."""
        return self._httpd.accepted

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` or Ctrl-C; either way, return without a traceback."""
        with self._lock:
            if self._stopped:
                return
            self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.05)
        except KeyboardInterrupt:
            logger.info("Loopback server on %s stopped (interrupted)", self.url)
        finally:
            self._close()

    def shutdown(self) -> None:
        """Stop serving, close open connections and release the port; safe to call twice."""
        with self._lock:
            already, self._stopped = self._stopped, True
            serving = self._serving
        if serving and not already:
            # Only when the loop runs: socketserver's shutdown() waits for it forever otherwise.
            self._httpd.shutdown()
        self._close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"loopback-server {self.url}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


@contextlib.contextmanager
def serve_in_thread(
    transport: httpx.BaseTransport, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve ``transport`` from a daemon thread for the ``with`` block; yields the base URL.

    Example::

        with serve_in_thread(LocalOpenMeter()) as url:
            client = OpenMeterBilling(base_url=url)
    """
    with LoopbackServer(transport, host, port) as server:
        yield server.url
