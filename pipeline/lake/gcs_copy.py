"""UploadGCS's copy of a local lake's clean months on Google Cloud Storage, for BigQuery, in
the same layout as the lake. (With ``[lake] root = "gs://..."`` the lake itself is on GCS,
``pipeline.lake.gcs``, and there is nothing to copy.)

``gs://{bucket}/{prefix}/clean/{color}/year=YYYY/month=MM/{part-0.parquet,_quality.json}``

Integrity: the client sends each object's crc32c and the server rejects a body that does not
match it. A month counts as uploaded only if every object exists with the size and crc32c of
the local file (one list request per month), so a partial, truncated, replaced or deleted
object makes UploadGCS run again. luigi.contrib.gcs is not used: it is built on the old
google-api-python-client, forces https (no emulator), and checks existence only.

Credentials come by Google's standard routes only (Application Default Credentials,
GOOGLE_APPLICATION_CREDENTIALS, or STORAGE_EMULATOR_HOST for an emulator); none are read from
luigi.toml, so none can reach a log line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from google.cloud.storage.retry import DEFAULT_RETRY

from pipeline.domain import quality
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.lake import local as lake
from pipeline.lake.gcs import storage_client
from pipeline.util.gcp_retry import logged, one_line

log = logging.getLogger(__name__)

# (bytes sent, bytes total, bytes/s)
UploadProgress = Callable[[int, int | None, float], None]

CHUNK = 8 << 20  # resumable upload chunk: also how often progress is reported


crc32c_file = lake.crc32c_file


def _retry(what: str) -> Retry:
    """The storage client's own retry of 408/429/5xx and resets, logged (pipeline.gcp_retry).
    Every call below is safe to repeat: reads, and uploads of the same bytes to the same
    name, whose crc32c the server and then ``upload_month`` check."""
    return logged(DEFAULT_RETRY, f"GCS {what}", log)


@dataclass(frozen=True)
class GcsCopy:
    bucket: str
    prefix: str = "tlc"
    project: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket:
            raise PipelineError("[gcs] bucket is not set: name the bucket in luigi.toml")

    @property
    def client(self) -> storage.Client:
        return storage_client(self.project)

    def month_prefix(self, key: MonthKey) -> str:
        parts = [p for p in self.prefix.strip("/").split("/") if p]
        return (
            "/".join([*parts, "clean", key.color, f"year={key.year:04d}", f"month={key.month:02d}"])
            + "/"
        )

    def uri(self, key: MonthKey, name: str) -> str:
        return f"gs://{self.bucket}/{self.month_prefix(key)}{name}"

    def data_uris(self, key: MonthKey, report: QualityReport) -> list[str]:
        """The month's parquet objects, as the report lists them (what BigQuery loads)."""
        return [self.uri(key, f["name"]) for f in report["files"]]

    # -- what should be there, and what is -------------------------------------------------
    @staticmethod
    def expected(clean_dir: Path) -> dict[str, tuple[int, str]]:
        """name -> (size, crc32c) of every object a month needs, data files first."""
        report = read_local_quality(clean_dir)
        out = {}
        for f in report["files"]:
            crc = f.get("crc32c") or crc32c_file(clean_dir / f["name"])
            out[f["name"]] = (int(f["bytes"]), crc)
        q = clean_dir / lake.QUALITY_FILE
        out[lake.QUALITY_FILE] = (q.stat().st_size, crc32c_file(q))
        return out

    def remote(self, key: MonthKey) -> dict[str, tuple[int, str]]:
        prefix = self.month_prefix(key)
        what = f"listing {key.label} in gs://{self.bucket}/{prefix}"
        with one_line(f"GCS {what}"):
            try:
                blobs = self.client.list_blobs(self.bucket, prefix=prefix, retry=_retry(what))
                return {b.name[len(prefix) :]: (int(b.size), b.crc32c) for b in blobs}
            except gexc.NotFound:
                return {}

    def month_complete(self, clean_dir: Path, key: MonthKey) -> bool:
        remote = self.remote(key)
        if not (clean_dir / lake.QUALITY_FILE).exists():
            # The local lake was cleared; trust the bucket if its own quality file lists
            # every data object with the sizes it recorded.
            return self._remote_self_consistent(key, remote)
        return all(remote.get(name) == want for name, want in self.expected(clean_dir).items())

    def read_quality(self, key: MonthKey) -> QualityReport:
        """The month's _quality.json as the bucket holds it."""
        blob = self.client.bucket(self.bucket).blob(self.month_prefix(key) + lake.QUALITY_FILE)
        uri = self.uri(key, lake.QUALITY_FILE)
        what = f"read of {key.label} {uri}"
        # e.g. 403 when the account may not read the bucket: one line, not a traceback
        with one_line(f"GCS {what}"):
            try:
                data = blob.download_as_bytes(retry=_retry(what))
            except gexc.NotFound:
                raise PipelineError(
                    f"GCS {uri} is missing: run UploadGCS for the month first"
                ) from None
        return quality.parse(data, uri)

    def remove_month(self, key: MonthKey, dry_run: bool = False) -> list[str]:
        """Delete the month's objects (to force a re-upload); return their URIs."""
        prefix = self.month_prefix(key)
        removed = []
        what = f"listing {key.label} in gs://{self.bucket}/{prefix}"
        with one_line(f"GCS {what}"):
            blobs = list(self.client.list_blobs(self.bucket, prefix=prefix, retry=_retry(what)))
        for blob in blobs:
            what = f"delete of gs://{self.bucket}/{blob.name}"
            if not dry_run:
                with one_line(f"GCS {what}"), contextlib.suppress(gexc.NotFound):  # gone: fine
                    blob.delete(retry=_retry(what))
            removed.append(f"gs://{self.bucket}/{blob.name}")
        return removed

    def _remote_self_consistent(self, key: MonthKey, remote: dict[str, tuple[int, str]]) -> bool:
        if lake.QUALITY_FILE not in remote:
            return False
        quality = self.read_quality(key)
        return all(
            f["name"] in remote
            and remote[f["name"]][0] == int(f["bytes"])
            and (not f.get("crc32c") or remote[f["name"]][1] == f["crc32c"])
            for f in quality["files"]
        )

    # -- upload -----------------------------------------------------------------------------
    def upload_month(
        self, clean_dir: Path, key: MonthKey, progress: UploadProgress | None = None
    ) -> list[str]:
        """Upload what is missing or different; ``_quality.json`` last. Returns the URIs."""
        want = self.expected(clean_dir)
        have = self.remote(key)
        todo = [name for name, spec in want.items() if have.get(name) != spec]
        total = sum(want[n][0] for n in todo)
        sent = 0
        started = time.monotonic()
        bucket = self.client.bucket(self.bucket)
        for name in sorted(todo, key=lambda n: n == lake.QUALITY_FILE):
            path = clean_dir / name
            blob = bucket.blob(self.month_prefix(key) + name, chunk_size=CHUNK)
            what = f"upload of {key.label} to gs://{self.bucket}/{blob.name}"
            base = sent

            def report(done: int, base: int = base) -> None:
                if progress:
                    elapsed = max(time.monotonic() - started, 1e-6)
                    progress(base + done, total, (base + done) / elapsed)

            with one_line(f"GCS {what}"):
                try:
                    with open(path, "rb") as f:
                        blob.upload_from_file(
                            _Counting(f, report),
                            size=want[name][0],
                            checksum="crc32c",
                            content_type="application/json"
                            if name.endswith(".json")
                            else "application/vnd.apache.parquet",
                            # Explicit, although google-cloud-storage >= 3 retries uploads by
                            # default: sending the same bytes to the same name again is safe
                            # (the crc32c checks below refuse anything else), and each retry
                            # is logged.
                            retry=_retry(what),
                        )
                    blob.reload(retry=_retry(f"checking the {what}"))
                except DataCorruption as e:
                    # The object's crc32c is not the file's (bytes changed on the way, or a
                    # resent chunk stored twice). The client deletes what a resumable upload
                    # made; the next run uploads the object again.
                    raise PipelineError(
                        f"GCS {what}: the bucket's crc32c does not match the file ({e})"
                    ) from None
            if (int(blob.size), blob.crc32c) != want[name]:
                raise PipelineError(
                    f"GCS gs://{self.bucket}/{blob.name}: stored size/crc32c "
                    f"{blob.size}/{blob.crc32c} differ from {path} {want[name]}"
                )
            sent += want[name][0]
            report(0)
        # Objects of an earlier copy of the month (a re-cleaned month's old parts): nothing
        # lists them any more.
        stale = [n for n in have if n not in want and not n.startswith(".")]
        for name in stale:
            what = f"delete of {self.uri(key, name)}"
            with one_line(f"GCS {what}"), contextlib.suppress(gexc.NotFound):
                bucket.blob(self.month_prefix(key) + name).delete(retry=_retry(what))
        log.info(
            "%s: uploaded %d objects (%d bytes) to gs://%s/%s",
            key.label,
            len(todo),
            total,
            self.bucket,
            self.month_prefix(key),
        )
        return [self.uri(key, n) for n in want]


def read_local_quality(clean_dir: Path) -> QualityReport:
    path = clean_dir / lake.QUALITY_FILE
    return quality.parse(path.read_bytes(), str(path))


class _Counting(io.RawIOBase):
    """A read-only file wrapper that reports how many bytes the client has read."""

    def __init__(self, f: BinaryIO, report: Callable[[int], None]):
        self._f, self._report, self._done = f, report, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._done += len(data)
        self._report(self._done)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self._f.seek(offset, whence)
        self._done = pos
        return pos

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True
