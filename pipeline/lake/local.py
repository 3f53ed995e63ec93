"""The local data lake: where each stage's files live, and how they are published.

A file or folder only ever appears under its final name complete: it is written under a
temporary name in the same folder and renamed, and ``os.replace``/``os.rename`` are atomic
on one filesystem. Readers (and Luigi's ``complete()``) therefore never see half a month.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from pipeline.domain import catalog, quality
from pipeline.domain.errors import LakeWriteError
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport, SourceManifest

QUALITY_FILE = quality.FILE_NAME
CLEAN_FILE = "part-0.parquet"


@dataclass(frozen=True)
class Lake:
    root: Path

    def raw_path(self, key: MonthKey, fmt: str) -> Path:
        return self.root / "raw" / key.color / catalog.raw_filename(key, fmt)

    def clean_dir(self, key: MonthKey) -> Path:
        return self.root / "clean" / key.color / f"year={key.year:04d}" / f"month={key.month:02d}"

    def quality_path(self, key: MonthKey) -> Path:
        return self.clean_dir(key) / QUALITY_FILE

    def zones_path(self) -> Path:
        return self.root / "raw" / "zones" / "taxi_zone_lookup.csv"


def manifest_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + ".manifest.json")


def read_manifest(data_path: Path) -> SourceManifest:
    """What DownloadMonth recorded about a raw file."""
    found: SourceManifest = json.loads(manifest_path(data_path).read_text())
    return found


_HOST = socket.gethostname().replace("-", "_")


def temp_name(final: Path) -> Path:
    """A sibling name that no reader globs for (leading dot), saying which process owns it."""
    return final.with_name(f".{final.name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def sweep_stale_temps(final: Path) -> list[Path]:
    """Remove temp siblings of ``final`` left by a process of this host that no longer runs
    (a worker killed with -9 cannot clean up after itself). Others' temps are left alone."""
    removed = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        try:
            host, pid, _ = p.name.rsplit(".tmp-", 1)[1].split("-")
            if host != _HOST or _alive(int(pid)):
                continue
        except ValueError:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temp path; rename it to ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(final)
    tmp = temp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder; publish it as ``final`` only if the block succeeds.

    If ``final`` exists (a forced rerun) it is moved aside first and removed after the new
    folder is in place, so a reader sees the old month or the new one, never a mix."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(final)
    tmp = temp_name(final)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = temp_name(final)
            os.rename(final, old)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, data: Mapping[str, object]) -> None:
    try:
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    except OSError as e:
        raise write_error(path, e) from None


def write_error(path: Path, error: OSError) -> LakeWriteError:
    """One clear error for a lake file that cannot be written (``OSError`` names no file when
    pyarrow raises it)."""
    cause = error.strerror or str(error)
    return LakeWriteError(f"{path}: cannot write to the lake: {cause}")


def read_json(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text()))


def read_quality(clean_dir: Path) -> QualityReport:
    """The month's quality report (the one reader: pipeline.domain.quality.parse)."""
    path = clean_dir / QUALITY_FILE
    return quality.parse(path.read_bytes(), str(path))


def quality_if_present(path: Path) -> QualityReport | None:
    return quality.parse(path.read_bytes(), str(path)) if path.exists() else None


def write_quality(clean_dir: Path, report: QualityReport) -> None:
    """Write the report (the one writer: pipeline.domain.quality.dump), atomically."""
    path = clean_dir / QUALITY_FILE
    try:
        with atomic_file(path) as tmp:
            tmp.write_text(quality.dump(report))
    except OSError as e:
        raise write_error(path, e) from None


def crc32c_file(path: Path, chunk: int = 1 << 20) -> str:
    """The crc32c as GCS reports it (base64 of the big-endian value), so an uploaded object
    can be checked against the local file without reading either again."""
    c = google_crc32c.Checksum()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            c.update(block)
    return base64.b64encode(c.digest()).decode()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_month(lake: Lake, key: MonthKey, stages: set[str], dry_run: bool = False) -> list[Path]:
    """Delete a month's lake files for the given stages ("raw", "clean"). Used to force a rerun.
    With ``dry_run``, only list them."""
    removed: list[Path] = []
    if "raw" in stages:
        for fmt in catalog.SOURCE_FORMATS:
            p = lake.raw_path(key, fmt)
            for q in (p, manifest_path(p)):
                if q.exists():
                    if not dry_run:
                        q.unlink()
                    removed.append(q)
    if "clean" in stages:
        d = lake.clean_dir(key)
        if d.exists():
            if not dry_run:
                shutil.rmtree(d)
            removed.append(d)
    return removed
