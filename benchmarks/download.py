"""How the download reads a body: ``read1`` (what arrived) against ``stream`` (whole chunks).

    .venv/bin/python -m benchmarks.download --runs 5          # 190 MB
    .venv/bin/python -m benchmarks.download --smoke           # 20 MB, 1 run, no goal (CI)

``pipeline/extract/download.py`` reads the HTTP body with urllib3's ``read1(1 MiB)``, which
returns whatever the socket has. It used ``stream(1 MiB)``, which blocks until it has a whole
MiB: against a server that trickles, neither ``read_timeout`` nor the ``[source] min_rate``
check could fire, since control never came back to the loop. This measures the price of the
change on a body that arrives as fast as this machine serves it: the same file, served over
real HTTP on 127.0.0.1 (the tests' TLC server), read in the same process by both loops,
alternating, ``--runs`` times each; each loop also feeds a sha256, as the download does.
Goal: read1's throughput at least 0.95x stream's (medians).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import goal  # noqa: E402
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
    while chunk := resp.raw.read1(CHUNK, decode_content=False):
        digest.update(chunk)
        size += len(chunk)
    return size


def timed(session: requests.Session, url: str, loop: Callable[[requests.Response], int]) -> float:
    started = time.perf_counter()
    with session.get(url, stream=True, timeout=(10, 60)) as resp:
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
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "body.parquet"
        src.write_bytes(os.urandom(mb << 20))  # incompressible, like a parquet month
        server = TLCServer(Path(tmp) / "cdn").start()
        try:
            url = server.publish("/trip-data/yellow_tripdata_2021-01.parquet", src)
            session = requests.Session()
            timed(session, url, read_read1)  # warm: the page cache and the connection
            times: dict[str, list[float]] = {"stream": [], "read1": []}
            for _ in range(runs):
                times["stream"].append(timed(session, url, read_stream))
                times["read1"].append(timed(session, url, read_read1))
        finally:
            server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: mb / v for k, v in med.items()}
    print(f"| loop | median s | MB/s | runs ({mb} MB each) |")
    print("|---|---|---|---|")
    for k in ("stream", "read1"):
        print(f"| {k} | {med[k]:.3f} | {rate[k]:.0f} | {', '.join(f'{t:.3f}' for t in times[k])} |")
    ratio = rate["read1"] / rate["stream"]
    print(f"read1 reads at {ratio:.2f}x stream's rate (goal >= 0.95)")
    goal(
        "download",
        f"the body read with read1 at {mb} MB: >= 0.95x stream's rate",
        f"{ratio:.2f}x",
        None if args.smoke else ratio >= 0.95,
        baseline=f"stream {rate['stream']:.0f} MB/s",
        limit=f"read1 {rate['read1']:.0f} MB/s",
    )
    if not args.smoke and ratio < 0.95:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
