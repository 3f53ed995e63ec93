"""Is a downloaded body a whole file of its kind? Checked while it streams, in one pass.

The body goes to the lake as it arrives (no copy in memory, none on local disk when the lake
is a bucket), so the checks ride along: the first bytes (an HTML error page? the format's
magic?), a gzip stream decompressed to its end (its trailer is the only proof that a body
sent without Content-Length arrived whole), and, for parquet, the footer, read back from the
written object (two range reads on GCS) before the file is published.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain.errors import BadSourceFile

HEAD = 512
_READ = 1 << 20


class StreamVerifier:
    """Feed it the body's chunks in order, then call ``finish``; raises BadSourceFile naming
    ``name`` and the cause."""

    def __init__(self, kind: str, name: str):
        if kind not in ("parquet", "csv.gz", "csv"):
            raise ValueError(f"unknown file kind {kind!r}")
        self.kind, self.name = kind, name
        self.size = 0
        self._head = b""
        self._tail = b""
        self._gzip = _GzipCheck(name) if kind == "csv.gz" else None
        self._first_line = b""
        self._head_checked = False

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < HEAD:
            self._head += chunk[: HEAD - len(self._head)]
            if len(self._head) >= HEAD:
                self._check_head()  # early: an error page need not be downloaded whole
        self.size += len(chunk)
        self._tail = (self._tail + chunk[-8:])[-8:]
        if self._gzip is not None:
            self._gzip.feed(chunk)
        elif self.kind == "csv" and b"\n" not in self._first_line:
            self._first_line = (self._first_line + chunk)[: 1 << 16]

    def finish(self, read_footer: pa.NativeFile | None = None) -> None:
        """The body has ended. For parquet, ``read_footer`` is the written file, opened for
        random access, to check its footer."""
        if self.size == 0:
            raise BadSourceFile(f"{self.name}: empty file (0 bytes)")
        if not self._head_checked:
            self._check_head()
        if self.kind == "parquet":
            if self.size < 12 or self._tail[-4:] != b"PAR1":
                raise BadSourceFile(
                    f"{self.name}: truncated parquet file: no PAR1 footer at the end of "
                    f"{self.size} bytes"
                )
            if read_footer is not None:
                try:
                    pq.read_metadata(read_footer)
                except Exception as e:
                    raise BadSourceFile(f"{self.name}: unreadable parquet footer: {e}") from None
        elif self._gzip is not None:
            _check_header_line(self._gzip.finish(), self.name)
        else:
            _check_header_line(self._first_line.split(b"\n", 1)[0], self.name)

    def _check_head(self) -> None:
        head = self._head
        self._head_checked = True
        if _looks_like_html(head):
            raise BadSourceFile(
                f"{self.name}: an HTML page, not a {self.kind} file (the server's error page?): "
                f"{_printable(head[:120])!r}"
            )
        if self.kind == "parquet" and not head.startswith(b"PAR1"):
            raise BadSourceFile(f"{self.name}: not a parquet file (no PAR1 magic at the start)")
        if self.kind == "csv.gz" and not head.startswith(b"\x1f\x8b"):
            raise BadSourceFile(
                f"{self.name}: not a gzip file (starts with {_printable(head[:16])!r})"
            )


class _GzipCheck:
    """Decompress as the bytes come (several members, as gzip allows), keeping the first
    line; at the end, the last member must have ended."""

    def __init__(self, name: str):
        self.name = name
        self._d = zlib.decompressobj(wbits=31)
        self._first_line = b""
        self._out = 0

    def feed(self, chunk: bytes) -> None:
        try:
            while chunk:
                out = self._d.decompress(chunk, _READ)
                self._take(out)
                while self._d.unconsumed_tail:
                    self._take(self._d.decompress(self._d.unconsumed_tail, _READ))
                if self._d.eof:
                    chunk = self._d.unused_data
                    if chunk:  # another member follows
                        self._d = zlib.decompressobj(wbits=31)
                else:
                    chunk = b""
        except zlib.error as e:
            raise BadSourceFile(f"{self.name}: gzip stream is truncated or corrupt: {e}") from None

    def _take(self, out: bytes) -> None:
        self._out += len(out)
        if b"\n" not in self._first_line and len(self._first_line) < 1 << 16:
            self._first_line += out[: 1 << 16]

    def finish(self) -> bytes:
        if not self._d.eof:
            raise BadSourceFile(
                f"{self.name}: gzip stream is truncated or corrupt: it ends before its "
                f"trailer (after {self._out:,} decompressed bytes)"
            )
        return self._first_line.split(b"\n", 1)[0]


def verify_file(path: Path, kind: str, *, name: str | None = None) -> None:
    """Check that the local file ``path`` is a whole file of ``kind`` (the same checks as a
    download's)."""
    v = StreamVerifier(kind, name or str(path))
    with open(path, "rb") as f:
        while block := f.read(_READ):
            v.feed(block)
    if kind == "parquet" and v.size >= 12:
        with pa.OSFile(str(path), "r") as f:
            v.finish(f)
    else:
        v.finish()


def _check_header_line(line: bytes, name: str) -> None:
    if not line.strip():
        raise BadSourceFile(f"{name}: no CSV header line (the file decompresses to nothing)")
    if b"," not in line or b"\x00" in line:
        raise BadSourceFile(f"{name}: first line is not a CSV header: {_printable(line[:80])!r}")


def _looks_like_html(head: bytes) -> bool:
    h = head.lstrip().lower()
    return h.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or (
        b"<html" in h[:200]
    )


def _printable(b: bytes) -> str:
    return b.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
