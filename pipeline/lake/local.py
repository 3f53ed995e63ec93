"""The lake in a local folder, and the file-level tools of atomic publication.

A file only ever appears under its final name complete: it is written under a temporary name
in the same folder and renamed, and ``os.replace`` is atomic on one filesystem. A marker is
published create-only with ``os.link``, which fails when the name exists, also on NFS. So a
folder keeps the same protocol as a bucket (``pipeline.lake.lake``), and two workers sharing a
folder (on one host, or over NFS) can never both publish a month.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import pyarrow.fs as pafs

from pipeline.domain import quality
from pipeline.domain.errors import LakeWriteError
from pipeline.lake.store import ObjectInfo, ObjectWriter, walk_files

QUALITY_FILE = quality.FILE_NAME
# This host in temporary and object names: letters, digits and _ only, so a name splits on
# '-' and '.' without doubt.
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())


def writer_token() -> str:
    """Names one writer: host, process and a random part (``host-pid-rand``). Data objects
    carry it, so no two writers ever write the same name, and a sweep can tell whether the
    process that wrote an unpublished object is gone."""
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def token_is_dead(token: str) -> bool:
    """True when ``token``'s process ran on this host and has ended."""
    try:
        host, pid, _ = token.split("-")
        return host == _HOST and not pid_alive(int(pid))
    except ValueError:
        return False


def temp_name(final: Path) -> Path:
    """A sibling name that no reader globs for (leading dot), saying which process owns it."""
    return final.with_name(f".{final.name}.tmp-{writer_token()}")


def sweep_stale_temps(final: Path) -> list[Path]:
    """Remove temp siblings of ``final`` left by a process of this host that no longer runs
    (a worker killed with -9 cannot clean up after itself). Others' temps are left alone."""
    removed = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        if not token_is_dead(p.name.rsplit(".tmp-", 1)[1]):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 asks without sending)."""
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


class LocalStore:
    """The lake in a folder (``pipeline.lake.store.Store``)."""

    def __init__(self, root: Path):
        self.base = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.base)!r})"

    @property
    def root(self) -> str:
        return str(self.base)

    @property
    def filesystem(self) -> pafs.FileSystem:
        return pafs.LocalFileSystem()

    def path(self, name: str) -> str:
        return str(self.base / name)

    def uri(self, name: str) -> str:
        return str(self.base / name)

    def local_path(self, name: str) -> Path:
        return self.base / name

    def exists(self, name: str) -> bool:
        return (self.base / name).exists()

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return (self.base / name).read_bytes()
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[ObjectWriter]:
        final = self.base / name
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale_temps(final)
            tmp = temp_name(final)
            f = open(tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
        except OSError as e:
            raise write_error(final, e) from None
        try:
            try:
                # The sink raises LakeWriteError for the disk's errors; an OSError of the
                # caller's own (a reset connection) keeps its type.
                yield ObjectWriter(_FileSink(f, final))
            except BaseException:
                with contextlib.suppress(OSError):
                    f.close()
                raise
            try:
                f.close()  # flushes: a full disk may only show here
                os.replace(tmp, final)
            except OSError as e:
                raise write_error(final, e) from None
        finally:
            tmp.unlink(missing_ok=True)

    def create_only(self, name: str, data: bytes, metadata: Mapping[str, str]) -> bool:
        final = self.base / name
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_name(final)
            try:
                tmp.write_bytes(data)
                os.link(tmp, final)  # atomic, and fails if ``final`` exists
                return True
            except FileExistsError:
                # Someone's marker has the name, or ours does: over NFS a LINK whose reply
                # was lost is sent again and fails with EEXIST. Ours is the one with our
                # bytes (markers name the writer's token), as on GCS.
                return final.read_bytes() == data
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as e:
            if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise LakeWriteError(
                    f"{final}: the lake's filesystem does not allow hard links, which "
                    "publishing a month needs (create-only): put the lake on another one"
                ) from None
            raise write_error(final, e) from None

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        folder = self.base / prefix.rsplit("/", 1)[0] if "/" in prefix else self.base
        found = []
        for p in walk_files(folder):
            name = p.relative_to(self.base).as_posix()
            if not name.startswith(prefix) or p.name.startswith("."):
                continue
            st = p.stat()
            updated = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
            found.append(ObjectInfo(name, st.st_size, updated))
        return found

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            p = self.base / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            # Empty folders go too, up to the root: a forgotten month leaves nothing behind.
            for parent in p.parents:
                if parent == self.base or self.base not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

    def sweep_temporaries(self, prefix: str, older_than: dt.timedelta) -> list[str]:
        folder = self.base / prefix.rsplit("/", 1)[0] if "/" in prefix else self.base
        if not folder.is_dir():
            return []
        cutoff = dt.datetime.now(dt.UTC) - older_than
        removed = []
        for p in folder.iterdir():
            if not (p.name.startswith(".") and ".tmp-" in p.name):
                continue
            if not p.name[1:].startswith(prefix.rsplit("/", 1)[-1]):
                continue
            token = p.name.rsplit(".tmp-", 1)[1]
            try:
                mtime = dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)
            except FileNotFoundError:
                continue
            if token_is_dead(token) or mtime < cutoff:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p.relative_to(self.base).as_posix())
        return removed

    @contextlib.contextmanager
    def local_copies(self, names: Sequence[str]) -> Iterator[list[Path]]:
        yield [self.base / n for n in names]


class _FileSink:
    def __init__(self, f: BinaryIO, final: Path):
        self._f, self._final = f, final

    def write(self, data: bytes) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            raise write_error(self._final, e) from None
