"""A real HTTP server laid out like the TLC CDN, with faults on demand.

    /trip-data/{color}_tripdata_YYYY-MM.parquet     (the CDN)
    /{color}/{color}_tripdata_YYYY-MM.csv.gz        (the course's csv.gz mirror)
    /misc/taxi_zone_lookup.csv

Tests publish files with ``publish()`` and queue faults per path with ``fail()``; each request
to that path consumes one fault, then the file is served normally. It listens on 127.0.0.1
unless told another local address (the container test binds it to a podman network's gateway).
"""

from __future__ import annotations

import email.utils
import hashlib
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Fault:
    """kind: "status" (answer ``status``), "reset" (RST after half the body), "truncate"
    (full Content-Length, half the body, then close), "slow" (sleep ``delay`` s first),
    "no_length" (chunk-less body without Content-Length, cut at half), "throttle" (the whole
    body, slowly, over ``delay`` s), "trickle" (100 bytes every ``delay`` s, under any sane
    rate), "hold" (answer only once the test sets ``release``)."""

    kind: str
    status: int = 500
    delay: float = 0.0
    release: threading.Event | None = None


class TLCServer:
    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = root
        self.faults: dict[str, deque[Fault]] = {}
        self.requests: list[str] = []
        self.heads: list[str] = []  # HEADs (publication checks) apart: faults are for GETs
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server._handle(self)

            def do_HEAD(self):
                server._head(self)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> TLCServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def publish(self, url_path: str, source: Path) -> str:
        """Serve ``source`` at ``url_path`` (a symlink: nothing is copied)."""
        dest = self.root / url_path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        dest.symlink_to(source.resolve())
        return self.url + url_path

    def publish_month(self, color: str, year: int, month: int, source: Path, fmt: str) -> str:
        name = f"{color}_tripdata_{year:04d}-{month:02d}.{fmt}"
        path = f"/trip-data/{name}" if fmt == "parquet" else f"/{color}/{name}"
        return self.publish(path, source)

    def fail(self, url_path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(url_path, deque()).extend(faults)

    def count(self, fragment: str) -> int:
        return sum(fragment in r for r in self.requests)

    def wait_for_request(self, fragment: str, timeout: float = 60) -> None:
        """Until a GET for ``fragment`` has arrived (the request is the observable event)."""
        deadline = time.monotonic() + timeout
        while not self.count(fragment):
            if time.monotonic() > deadline:
                raise AssertionError(f"no request for {fragment} within {timeout} s")
            time.sleep(0.02)

    @property
    def parquet_template(self) -> str:
        return self.url + "/trip-data/{color}_tripdata_{year:04d}-{month:02d}.parquet"

    @property
    def csv_template(self) -> str:
        return self.url + "/{color}/{color}_tripdata_{year:04d}-{month:02d}.csv.gz"

    @property
    def zones_url(self) -> str:
        return self.url + "/misc/taxi_zone_lookup.csv"

    # -- serving ------------------------------------------------------------------------
    def _head(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.heads.append(h.path)
        path = self.root / h.path.split("?", 1)[0].lstrip("/")
        h.send_response(200 if path.is_file() else 403)
        h.send_header("Content-Length", str(path.stat().st_size if path.is_file() else 0))
        h.end_headers()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(h.path)
            queue = self.faults.get(h.path)
            fault = queue.popleft() if queue else None
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if fault and fault.kind == "hold":
            assert fault.release is not None
            fault.release.wait(timeout=120)
            fault = None
        if fault and fault.kind == "status":
            body = f"<html><body>error {fault.status}</body></html>".encode()
            h.send_response(fault.status)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        path = self.root / h.path.split("?", 1)[0].lstrip("/")  # signed URLs carry a query
        if not path.is_file():
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"
            h.send_response(403)  # what CloudFront answers for a missing key
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        data = path.read_bytes()
        stat = path.stat()
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
        h.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        if fault and fault.kind == "no_length":
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.close_connection = True
            return
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if fault and fault.kind == "throttle":  # the whole body, spread over ``delay`` s
            step = max(len(data) // 20, 1)
            for i in range(0, len(data), step):
                h.wfile.write(data[i : i + step])
                h.wfile.flush()
                time.sleep(fault.delay / 20)
            return
        if fault and fault.kind == "trickle":  # 100 bytes every ``delay`` s: never idle for
            try:  # a read timeout, never done; until the client hangs up
                for i in range(0, len(data), 100):
                    h.wfile.write(data[i : i + 100])
                    h.wfile.flush()
                    time.sleep(fault.delay)
            except (BrokenPipeError, ConnectionResetError):
                h.close_connection = True
            return
        if fault and fault.kind in ("truncate", "reset"):
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            if fault.kind == "reset":  # SO_LINGER 0 turns close() into a TCP RST
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            h.close_connection = True
            return
        h.wfile.write(data)


def free_port() -> int:
    """A port nobody holds now: for a server the caller starts on it at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefusedPorts:
    """Ports that refuse every connection for as long as this object is open: each is bound
    and never listened on. A port from ``free_port()`` is only free until another process
    (another pytest-xdist worker, a client's ephemeral port) takes it, and a test that
    expects "connection refused" there would then talk to whatever took it."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def __call__(self) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self._sockets.append(s)
        return int(s.getsockname()[1])

    def close(self) -> None:
        for s in self._sockets:
            s.close()
        self._sockets.clear()
