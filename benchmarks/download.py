"""How the download reads a body: ``read1`` (what arrived) against ``stream`` (whole chunks).

    .venv/bin/python -m benchmarks.download --runs 5          # 190 MB
    .venv/bin/python -m benchmarks.download --smoke           # 20 MB, 1 run, no goal (CI)

``pipeline/extract/download.py`` reads the HTTP body with urllib3's ``read1(256 KiB)``, which
returns whatever the socket has. It used ``stream(1 MiB)``, which blocks until it has a whole
MiB: against a server that trickles, neither ``read_timeout`` nor the ``[source] min_rate``
check could fire, since control never came back to the loop. This measures the price of the
change on a body that arrives as fast as this machine serves it: the same file, served on
127.0.0.1 over plain HTTP (the tests' TLC server) and over HTTPS (as the TLC's CDN serves it;
there read1 returns at most one TLS record, 16 KiB, per call), read in the same process by
both loops, alternating, ``--runs`` times each; each loop also feeds a sha256, as the download
does. Goal: read1's throughput at least 0.95x stream's (medians), on both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import goal  # noqa: E402
from pipeline.extract.download import READ  # noqa: E402
from tests.support.tlc_server import TLCServer  # noqa: E402

CHUNK = 1 << 20


def read_stream(resp: requests.Response) -> int:
    digest, size = hashlib.sha256(), 0
    for chunk in resp.raw.stream(CHUNK, decode_content=False):
        digest.update(chunk)
        size += len(chunk)
    return size


def read_read1(resp: requests.Response) -> int:
    digest, size = hashlib.sha256(), 0
    while chunk := resp.raw.read1(READ, decode_content=False):
        digest.update(chunk)
        size += len(chunk)
    return size


def https_server(root: Path, tmp: Path) -> tuple[ThreadingHTTPServer, str, Path]:
    """``root`` over HTTPS on 127.0.0.1, with a throwaway self-signed certificate."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}", cert


def timed(
    session: requests.Session, url: str, loop: Callable[[requests.Response], int], cert: Path
) -> float:
    started = time.perf_counter()
    # verify per request: a Session's own is overridden by REQUESTS_CA_BUNDLE (requests#3829)
    with session.get(url, stream=True, timeout=(10, 60), verify=str(cert)) as resp:
        resp.raise_for_status()
        size = loop(resp)
    took = time.perf_counter() - started
    if size != int(resp.headers["Content-Length"]):
        raise SystemExit(f"{loop.__name__} read {size} bytes of {resp.headers['Content-Length']}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=int, default=190)
    ap.add_argument("--smoke", action="store_true", help="20 MB, one run, no goal")
    args = ap.parse_args()
    runs, mb = (1, 20) if args.smoke else (args.runs, args.mb)
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "cdn" / "trip-data" / "yellow_tripdata_2021-01.parquet"
        src.parent.mkdir(parents=True)
        src.write_bytes(os.urandom(mb << 20))  # incompressible, like a parquet month
        server = TLCServer(Path(tmp) / "tlc").start()
        tls, tls_url, cert = https_server(Path(tmp) / "cdn", Path(tmp))
        try:
            urls = {
                "http": server.publish("/trip-data/yellow_tripdata_2021-01.parquet", src),
                "https": f"{tls_url}/trip-data/yellow_tripdata_2021-01.parquet",
            }
            for scheme, url in urls.items():
                session = requests.Session()
                timed(session, url, read_read1, cert)  # warm: the page cache, the connection
                times: dict[str, list[float]] = {"stream": [], "read1": []}
                for _ in range(runs):
                    times["stream"].append(timed(session, url, read_stream, cert))
                    times["read1"].append(timed(session, url, read_read1, cert))
                missed |= report(scheme, mb, times, args.smoke)
        finally:
            server.stop()
            tls.shutdown()
            tls.server_close()
    if missed:
        raise SystemExit(1)


def report(scheme: str, mb: int, times: dict[str, list[float]], smoke: bool) -> bool:
    """Print the table and the goal; True when the goal is missed."""
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: mb / v for k, v in med.items()}
    print(f"\n{scheme}:\n| loop | median s | MB/s | runs ({mb} MB each) |")
    print("|---|---|---|---|")
    for k in ("stream", "read1"):
        print(f"| {k} | {med[k]:.3f} | {rate[k]:.0f} | {', '.join(f'{t:.3f}' for t in times[k])} |")
    ratio = rate["read1"] / rate["stream"]
    print(f"{scheme}: read1 reads at {ratio:.2f}x stream's rate (goal >= 0.95)")
    goal(
        "download",
        f"the body read with read1 over {scheme} at {mb} MB: >= 0.95x stream's rate",
        f"{ratio:.2f}x",
        None if smoke else ratio >= 0.95,
        baseline=f"stream {rate['stream']:.0f} MB/s",
        limit=f"read1 {rate['read1']:.0f} MB/s",
    )
    return not smoke and ratio < 0.95


if __name__ == "__main__":
    main()
