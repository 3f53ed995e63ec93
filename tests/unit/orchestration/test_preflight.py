"""The start-of-run check of luigid: a URL with basic-auth credentials is reached with them,
and its password is never shown."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.orchestration import preflight
from tests.support.tlc_server import RefusedPorts


@pytest.fixture
def luigid_behind_basic_auth() -> Iterator[tuple[int, list[str | None]]]:
    """A stand-in for luigid's /api/task_list behind a proxy that wants basic auth."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            seen.append(auth)
            ok = auth == "Basic " + base64.b64encode(b"ops:s3cr@t").decode()
            body = json.dumps({"response": {}}).encode() if ok else b""
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_in_the_url_become_a_basic_auth_header(luigid_behind_basic_auth):
    port, seen = luigid_behind_basic_auth
    assert preflight.probe(f"http://ops:s3cr%40t@127.0.0.1:{port}") == {}
    assert seen == ["Basic " + base64.b64encode(b"ops:s3cr@t").decode()]


def test_an_unreachable_luigid_with_credentials_is_named_without_its_password(
    refused_port: RefusedPorts,
):
    port = refused_port()
    with pytest.raises(preflight.SchedulerUnreachable) as e:
        preflight.probe(f"http://ops:s3cr3t@127.0.0.1:{port}")
    assert str(e.value).startswith(f"luigid at http://ops:***@127.0.0.1:{port} is unreachable")
    assert "Connection refused" in str(e.value)
    assert "s3cr3t" not in str(e.value)


def test_a_unix_socket_luigid_is_left_to_luigi(monkeypatch: pytest.MonkeyPatch):
    def no_probe(url: str) -> dict[str, object]:
        raise AssertionError(f"probed {url}")

    monkeypatch.setattr(preflight, "probe", no_probe)
    argv = ["luigi", "--scheduler-url", "http+unix://%2Fvar%2Frun%2Fluigid.sock", "X"]
    preflight.check_scheduler(argv)  # returns: urllib cannot reach it, Luigi can


def test_an_ipv6_luigid_keeps_its_brackets():
    assert preflight.shown("http://ops:s3cr3t@[::1]:8082") == "http://ops:***@[::1]:8082"
    assert preflight.shown("http://[::1]:8082") == "http://[::1]:8082"
    assert preflight.probeable("http://[::1]:8082")
    assert not preflight.probeable("http+unix://%2Fvar%2Frun%2Fluigid.sock")
