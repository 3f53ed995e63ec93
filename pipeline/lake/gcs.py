"""The lake on Google Cloud Storage: ``[lake] root = "gs://bucket/prefix"``.

Reads go through pyarrow's ``GcsFileSystem`` (C++, range reads, the GIL released): the clean
stage reads a raw parquet month row group by row group from it, as from a local file. Writes
go through google-cloud-storage, in pieces whose size is known:

- an object is written as 4 MiB chunks, each one a single-request upload with its crc32c
  (the server refuses a chunk whose bytes changed on the way), one in flight while the next
  fills, then composed into the final name (32 pieces per compose request, repeated for larger
  objects) and the chunks deleted. Memory stays at two chunks whatever the object's size,
  the size of the stream need not be known (a clean month's parquet is not), a retry resends
  one chunk, and the final object's crc32c is checked against the bytes written.
- a marker (``*.manifest.json``, ``_quality.json``) is one small upload with
  ``if_generation_match=0``: it is created only if no object has the name.

Why not pyarrow's or gcsfs's output streams (a resumable upload of unknown size): measured
here, fake-gcs-server stores such uploads corrupted (584 MB for 100 MB; fsouza/fake-gcs-server
#2354), so no test could show that our writes are right, and a resumable session that dies
with its process leaves nothing a sweep can see. Chunks + compose run at 55 MB/s against the
emulator, a known-size resumable upload at 34 MB/s (benchmarks/README.md). gcsfs was also
20x slower to read than pyarrow against the emulator.

Credentials come by Google's standard routes only (Application Default Credentials,
GOOGLE_APPLICATION_CREDENTIALS, or STORAGE_EMULATOR_HOST for an emulator); none are read
from luigi.toml, so none can reach a log line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from pipeline.domain.errors import PipelineError
from pipeline.lake.local import token_is_dead, writer_token
from pipeline.lake.store import ObjectInfo, ObjectWriter
from pipeline.util.gcp_retry import FAILED, logged, why
from pipeline.util.memory import unmap_large_buffers
from pipeline.util.per_process import per_process

log = logging.getLogger(__name__)

# Bytes per uploaded piece, at most, and pieces uploading while the next one fills. Measured
# on a 224 MB month (benchmarks/lake.py): 8 MiB pieces, two in flight, cost 86 MB more peak
# RSS than 4 MiB and one (the client copies each piece twice, and freed 8 MiB buffers
# fragment the upload threads' malloc arenas), and were no faster against the emulator.
CHUNK = 4 << 20
IN_FLIGHT = 1
COMPOSE_MAX = 32  # GCS composes at most 32 objects per request
READ_RETRY_LIMIT = dt.timedelta(seconds=60)  # pyarrow's retries of a read, in all

T = TypeVar("T")


@per_process
def storage_client(project: str | None) -> storage.Client:
    """One client per process (it holds the HTTP session and the credentials; a forked task
    process makes its own: pipeline/util/per_process.py)."""
    return storage.Client(project=project or None)


def _retry(what: str) -> Retry:
    """The client's own retry of 408/429/5xx and resets, logged and bounded
    (pipeline.util.gcp_retry). Each call below is safe to repeat: reads, uploads of the same
    bytes to a name only this writer uses, and create-only markers (checked on 412)."""
    return logged(DEFAULT_RETRY, f"GCS {what}", log)


@per_process
def arrow_filesystem(emulator: str | None, project: str | None) -> pafs.GcsFileSystem:
    """pyarrow's GCS filesystem; anonymous, over http, when an emulator is named."""
    if emulator:
        parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
        return pafs.GcsFileSystem(
            anonymous=True,
            endpoint_override=parts.netloc,
            scheme=parts.scheme or "http",
            retry_time_limit=READ_RETRY_LIMIT,
            project_id=project,
        )
    return pafs.GcsFileSystem(retry_time_limit=READ_RETRY_LIMIT, project_id=project)


def parse_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> (bucket, "some/prefix")."""
    parts = urlsplit(uri)
    if parts.scheme != "gs" or not parts.netloc:
        raise PipelineError(f"[lake] root {uri!r}: expected gs://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


class GcsStore:
    """The lake in a bucket (``pipeline.lake.store.Store``)."""

    def __init__(self, bucket: str, prefix: str = "", project: str | None = None):
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.project = project or None

    def __repr__(self) -> str:
        return f"GcsStore({self.root!r})"

    @property
    def client(self) -> storage.Client:
        return storage_client(self.project)

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    @property
    def root(self) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}".rstrip("/")

    @property
    def filesystem(self) -> pafs.FileSystem:
        return arrow_filesystem(os.environ.get("STORAGE_EMULATOR_HOST") or None, self.project)

    def path(self, name: str) -> str:
        return f"{self.bucket_name}/{self.key(name)}"

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self.key(name)}"

    def local_path(self, name: str) -> Path | None:
        return None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """One clear line for a call that failed after the client's retries."""
        try:
            return fn()
        except gexc.NotFound as e:
            if "bucket" in str(e).lower() and "does not exist" in str(e).lower():
                raise PipelineError(
                    f"GCS {what}: the bucket gs://{self.bucket_name} does not exist: create "
                    "it (gcloud storage buckets create) or fix [lake] root"
                ) from None
            raise
        except gexc.PreconditionFailed:
            raise  # the caller's answer (a create-only write that lost)
        except FAILED as e:  # an error answer, or none at all after the client's retries
            raise PipelineError(f"GCS {what} failed: {why(e)}") from None

    def exists(self, name: str) -> bool:
        what = f"check of {self.uri(name)}"
        blob = self.bucket.blob(self.key(name))
        return bool(self._call(what, lambda: blob.exists(retry=_retry(what))))

    def read_bytes(self, name: str) -> bytes | None:
        what = f"read of {self.uri(name)}"
        blob = self.bucket.blob(self.key(name))
        try:
            return bytes(self._call(what, lambda: blob.download_as_bytes(retry=_retry(what))))
        except gexc.NotFound:
            return None

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[ObjectWriter]:
        uploader = _ChunkedUpload(self, name)
        out = ObjectWriter(uploader)
        try:
            yield out
            blob = uploader.finish()
        except BaseException:
            uploader.abort()
            raise
        if blob.crc32c != out.crc32c or int(blob.size or 0) != out.size:
            self.delete([name])
            raise PipelineError(
                f"GCS {self.uri(name)}: stored size/crc32c {blob.size}/{blob.crc32c} differ "
                f"from the {out.size} bytes written ({out.crc32c}); deleted it"
            )

    def create_only(self, name: str, data: bytes, metadata: Mapping[str, str]) -> bool:
        what = f"create-only write of {self.uri(name)}"
        blob = self.bucket.blob(self.key(name))
        blob.metadata = dict(metadata)
        try:
            self._call(
                what,
                lambda: blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0,
                    checksum="crc32c",
                    retry=_retry(what),
                ),
            )
            return True
        except gexc.PreconditionFailed:
            # Someone's object has the name, or ours does: a retried request whose first
            # try landed gets 412 too. Ours is the one with our bytes (markers name the
            # writer's token).
            return self.read_bytes(name) == data

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        what = f"listing of {self.uri(prefix)}"

        def run() -> list[ObjectInfo]:
            blobs = self.client.list_blobs(
                self.bucket_name, prefix=self.key(prefix), retry=_retry(what)
            )
            return [
                ObjectInfo(self._rel(b.name), int(b.size or 0), b.updated, dict(b.metadata or {}))
                for b in blobs
            ]

        return self._call(what, run)

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            what = f"delete of {self.uri(name)}"
            blob = self.bucket.blob(self.key(name))

            def run(blob: storage.Blob = blob, what: str = what) -> None:
                blob.delete(retry=_retry(what))

            with contextlib.suppress(gexc.NotFound):
                self._call(what, run)

    def sweep_temporaries(self, prefix: str, older_than: dt.timedelta) -> list[str]:
        folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        stem = prefix.rsplit("/", 1)[-1]
        cutoff = dt.datetime.now(dt.UTC) - older_than
        stale = []
        for info in self.list_objects(folder):
            base = info.name[len(folder) :]
            if "/" in base or not base.startswith(f".{stem}") or ".tmp-" not in base:
                continue
            token = base.rsplit(".tmp-", 1)[1].split(".", 1)[0]
            if token_is_dead(token) or info.updated < cutoff:
                stale.append(info.name)
        self.delete(stale)
        return stale

    @contextlib.contextmanager
    def local_copies(self, names: Sequence[str]) -> Iterator[list[Path]]:
        """Copies in a temporary folder (TMPDIR), removed afterwards; a killed process's
        folder is removed by the next copy on the host."""
        scratch = Path(tempfile.gettempdir())
        for old in scratch.glob("tlc-lake-*"):
            if token_is_dead(old.name.removeprefix("tlc-lake-")):
                shutil.rmtree(old, ignore_errors=True)
        folder = scratch / f"tlc-lake-{writer_token()}"
        folder.mkdir()
        try:
            paths = []
            for name in names:  # a month's objects have distinct names; the sinks match them
                local = folder / name.rsplit("/", 1)[-1]
                self.download(name, local)
                paths.append(local)
            yield paths
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def download(self, name: str, dest: Path) -> None:
        try:
            with self.filesystem.open_input_stream(self.path(name)) as src, open(dest, "wb") as f:
                while block := src.read(CHUNK):
                    f.write(block)
        except OSError as e:
            raise PipelineError(f"GCS read of {self.uri(name)} to {dest} failed: {e}") from None


class _ChunkedUpload:
    """The sink behind a GcsStore writer: 4 MiB pieces, uploaded while the next fills, then
    composed into the object. Pieces are named ``.{name}.tmp-{token}.{n}`` beside the object,
    where a sweep finds them if the process dies."""

    def __init__(self, store: GcsStore, name: str):
        self.store, self.name = store, name
        # Pieces and the client's copies of them are freed as fast as they are made; with
        # glibc's dynamic threshold they pile up in the threads' heaps (pipeline/util/memory.py).
        unmap_large_buffers()
        folder, _, base = name.rpartition("/")
        stem = f".{base}.tmp-{writer_token()}"
        self._piece_stem = f"{folder}/{stem}" if folder else stem
        self._blocks: list[bytes] = []
        self._buffered = 0
        self._pieces: list[str] = []
        self._uploads: list[Future[None]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._final_started = False  # the object itself may exist (abort deletes it)

    def write(self, data: bytes) -> int:
        # Blocks are kept as they come and joined once into a piece: one copy per byte, not
        # the three that a growing bytearray sliced into pieces costs. Pieces need not be of
        # equal size (compose takes any).
        # A piece never exceeds CHUNK (at most 8 MiB): larger, the client would switch to a
        # resumable upload, with copies of its own.
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            part = view[start : start + CHUNK]
            block = data if isinstance(data, bytes) and len(part) == len(data) else bytes(part)
            if self._buffered + len(block) > CHUNK:
                self._flush()
            self._blocks.append(block)
            self._buffered += len(block)
        return len(data)

    def _flush(self) -> None:
        if not self._blocks:
            return
        piece = b"".join(self._blocks)
        self._blocks, self._buffered = [], 0
        self._submit(piece)

    def _submit(self, data: bytes) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="gcs-upload")
        name = f"{self._piece_stem}.{len(self._pieces):05d}"
        self._pieces.append(name)
        # Wait for the oldest upload when IN_FLIGHT are running: memory stays bounded.
        pending = [f for f in self._uploads if not f.done()]
        if len(pending) >= IN_FLIGHT:
            pending[0].result()
        for f in self._uploads:
            if f.done():
                f.result()  # an upload's error surfaces at the next write
        self._uploads.append(self._pool.submit(self._upload, name, data))

    def _upload(self, name: str, data: bytes) -> None:
        what = f"upload of {self.store.uri(name)}"
        blob = self.store.bucket.blob(self.store.key(name))
        self.store._call(
            what,
            lambda: blob.upload_from_string(
                data,
                content_type="application/octet-stream",
                checksum="crc32c",
                retry=_retry(what),
            ),
        )

    def finish(self) -> storage.Blob:
        store = self.store
        final = store.bucket.blob(store.key(self.name))
        what = f"upload of {store.uri(self.name)}"
        if not self._pieces:  # small: one request, no pieces
            data = b"".join(self._blocks)
            self._final_started = True
            store._call(
                what,
                lambda: final.upload_from_string(
                    data, content_type=_content_type(self.name), checksum="crc32c",
                    retry=_retry(what),
                ),
            )  # fmt: skip
            return final
        if self._blocks:
            self._flush()
        for f in self._uploads:
            f.result()
        self._shutdown()
        sources = list(self._pieces)
        step = 0
        while len(sources) > COMPOSE_MAX:
            target = f"{self._piece_stem}.c{step:03d}"
            self._compose(sources[:COMPOSE_MAX], target)
            self._pieces.append(target)
            sources = [target, *sources[COMPOSE_MAX:]]
            step += 1
        self._final_started = True
        self._compose(sources, self.name)
        store.delete(self._pieces)
        check = f"check of {store.uri(self.name)}"
        store._call(check, lambda: final.reload(retry=_retry(check)))
        return final

    def _compose(self, sources: list[str], target: str) -> None:
        store = self.store
        what = f"compose of {store.uri(target)}"
        blob = store.bucket.blob(store.key(target))
        blob.content_type = _content_type(target)
        parts = [store.bucket.blob(store.key(s)) for s in sources]
        store._call(what, lambda: blob.compose(parts, retry=_retry(what)))

    def abort(self) -> None:
        """Best effort: the pieces uploaded so far go, and the object itself if it was being
        made (a failure after the compose, say); a sweep takes what this misses. The name
        carries this writer's token, and no marker names it yet: no one else's data."""
        for f in self._uploads:
            f.cancel()
        self._shutdown()
        try:
            self.store.delete([*self._pieces, *([self.name] if self._final_started else [])])
        except PipelineError as e:  # _call's, for any failed call: logged, never raised
            log.warning("could not delete the pieces of %s: %s", self.store.uri(self.name), e)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _content_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    if name.endswith(".gz"):
        return "application/gzip"
    if name.endswith(".csv"):
        return "text/csv"
    return "application/octet-stream"
