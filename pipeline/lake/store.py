"""What the lake asks of the storage under it: a folder (``LocalStore``) or a bucket
(``GcsStore``). Both give the same few operations on '/'-separated object names relative to
the lake's root, and the lake's publication protocol (``pipeline.lake.lake``) is written once
on top of them.

The operations are the ones object storage does well, so a folder can do them too:

- ``writer(name)``: write an object that appears under ``name`` only whole, when the block
  succeeds (a folder: a temporary name, then a rename; a bucket: see ``pipeline.lake.gcs``).
  Names are never written twice: every data object's name carries its writer's token.
- ``create_only(name, data)``: write a small object if, and only if, none exists by that
  name; ``False`` when another writer got there first (an object with other bytes stands:
  a retried request whose first try landed still answers ``True``). This is the
  publication step. When it raises, whether ``data`` stands is unknown.
- reads through pyarrow's filesystem (``filesystem`` and ``path``), listing and deleting.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import google_crc32c
import pyarrow.fs as pafs


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # relative to the lake's root
    size: int
    updated: dt.datetime  # aware, UTC
    metadata: Mapping[str, str] = field(default_factory=dict)  # a bucket's custom metadata


class Sink(Protocol):
    """Where a writer's bytes go (a file, a chunk uploader)."""

    def write(self, data: bytes) -> int: ...


class ObjectWriter:
    """The file object a ``Store.writer`` yields: counts and hashes every byte on its way,
    so the clean stage and the download never read their output again to checksum it.

    pyarrow's ParquetWriter takes it as a Python file object."""

    def __init__(self, sink: Sink):
        self._sink = sink
        self._sha = hashlib.sha256()
        self._crc = google_crc32c.Checksum()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)  # pyarrow passes bytes
        self._sink.write(chunk)
        self._sha.update(chunk)
        self._crc.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        # pyarrow closes the file it was given when its ParquetWriter closes; the store
        # finishes the object when the ``writer`` block ends, not here.
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def crc32c(self) -> str:
        """As GCS reports it: base64 of the big-endian value."""
        return base64.b64encode(self._crc.digest()).decode()


class Store(Protocol):
    """A lake's storage. ``name`` arguments are relative to the lake's root."""

    @property
    def root(self) -> str:
        """The lake's root as the user wrote it: a folder, or gs://bucket/prefix."""
        ...

    @property
    def filesystem(self) -> pafs.FileSystem:
        """pyarrow's filesystem for reads (``path(name)`` on it)."""
        ...

    def path(self, name: str) -> str:
        """``name`` as ``filesystem`` wants it."""
        ...

    def uri(self, name: str) -> str:
        """``name`` as a user (or BigQuery) would write it: a local path or a gs:// URI."""
        ...

    def local_path(self, name: str) -> Path | None:
        """The local file of ``name`` when the store is a folder, else None."""
        ...

    def exists(self, name: str) -> bool: ...

    def read_bytes(self, name: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    def writer(self, name: str) -> AbstractContextManager[ObjectWriter]: ...

    def create_only(self, name: str, data: bytes, metadata: Mapping[str, str]) -> bool: ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose name starts with ``prefix`` (recursively)."""
        ...

    def delete(self, names: Sequence[str]) -> None:
        """Delete objects; names that are gone already are fine."""
        ...

    def sweep_temporaries(self, prefix: str, older_than: dt.timedelta) -> list[str]:
        """Remove what killed writers left under ``prefix`` that is not a published object
        (temporary files, upload chunks); return what went."""
        ...

    def local_copies(self, names: Sequence[str]) -> AbstractContextManager[list[Path]]:
        """Local files holding ``names``, for readers that want a path (DuckDB): the files
        themselves for a folder, a temporary copy for a bucket."""
        ...


def walk_files(root: Path) -> Iterator[Path]:
    """Every file below ``root`` (nothing if it does not exist)."""
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        return
    for p in sorted(root.rglob("*")):
        if p.is_file():
            yield p
