"""Read a raw TLC file as a stream of Arrow record batches, whatever its format or era.

Memory stays flat: parquet is read row group by row group, CSV block by block. CSV values
are read as strings and cast by ``transform`` so that a block's type guess can never
disagree with the next block's, and so that a bad value fails with its column's name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.domain.errors import BadSourceFile

CSV_BLOCK = 8 << 20
SNIFF_LINES = 200


@dataclass
class SourceStats:
    truncated_last_row: int = 0  # a cut-off final line (no newline, too few fields), dropped
    repaired_rows: int = 0  # rows whose trailing empty padding differed from the rest


@dataclass(frozen=True)
class RawInput:
    """Where a raw file is: a path on one of pyarrow's filesystems (a folder or a bucket),
    and the file's name for messages. Compression follows the name (``.gz``)."""

    filesystem: pafs.FileSystem
    path: str
    name: str

    @classmethod
    def local(cls, path: Path | str) -> RawInput:
        return cls(pafs.LocalFileSystem(), str(path), Path(path).name)

    def open_file(self) -> pa.NativeFile:
        """Random access (parquet: the footer, then row group by row group)."""
        return self.filesystem.open_input_file(self.path)

    def open_stream(self) -> pa.NativeFile:
        """Sequential bytes, decompressed when the name ends in .gz."""
        return self.filesystem.open_input_stream(self.path, compression="detect")

    def open_lines(self) -> io.BufferedReader:
        """``open_stream`` with readline (pyarrow's streams have none)."""
        return io.BufferedReader(_Raw(self.open_stream()), 1 << 20)


@dataclass
class RawSource:
    input: RawInput
    kind: str
    names: list[str]
    stats: SourceStats = field(default_factory=SourceStats)

    @property
    def name(self) -> str:
        return self.input.name

    def batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self.kind == "parquet":
            yield from _parquet_batches(self.input, batch_rows)
        else:
            yield from _CsvReader(self).batches()


def open_source(where: RawInput | Path, kind: str) -> RawSource:
    raw = where if isinstance(where, RawInput) else RawInput.local(where)
    if kind == "parquet":
        try:
            with raw.open_file() as f:
                names = pq.ParquetFile(f).schema_arrow.names
        except Exception as e:
            raise BadSourceFile(f"{raw.name}: not a readable parquet file: {e}") from None
        return RawSource(raw, kind, names)
    if kind in ("csv", "csv.gz"):
        header = _read_header(raw)
        return RawSource(raw, kind, header)
    raise ValueError(f"unknown source kind {kind!r}")


def _parquet_batches(raw: RawInput, batch_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        with raw.open_file() as f:
            pf = pq.ParquetFile(f, pre_buffer=False)
            yield from pf.iter_batches(batch_size=batch_rows)
    except (pa.ArrowException, OSError) as e:
        raise BadSourceFile(f"{raw.name}: corrupt parquet data: {e}") from None


class _Raw(io.RawIOBase):
    """A pyarrow stream as a Python raw stream, for io.BufferedReader."""

    def __init__(self, f: pa.NativeFile):
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def _read_header(raw: RawInput) -> list[str]:
    try:
        with raw.open_lines() as f:
            line = f.readline(1 << 16)
    except (OSError, EOFError, pa.ArrowException) as e:
        raise BadSourceFile(f"{raw.name}: cannot read the CSV header: {e}") from None
    text = line.decode("utf-8-sig", "replace")
    fields = next(csv.reader([text]), [])
    if len(fields) < 2:
        raise BadSourceFile(f"{raw.name}: first line is not a CSV header: {text[:80]!r}")
    return fields


class _CsvReader:
    """pyarrow's streaming CSV reader plus the TLC's quirks.

    - Rows from 2013-2016 carry trailing empty fields that the header does not name. The
      padding width is sniffed from the first lines, so the common shape stays on
      pyarrow's fast path; rows that differ reach ``_on_invalid`` and are repaired there
      when the difference is only empty padding.
    - A cut-off final line (the *.head1KB.csv files, or a download that lost its tail) is
      dropped and counted. Any other malformed line fails the file with its line number.
    """

    def __init__(self, source: RawSource):
        self.src = source
        self.header = source.names
        self.width = len(self.header) + self._sniff_padding()
        self.columns = [f"c{i}" for i in range(self.width)]
        self.src.names = self.header + [""] * (self.width - len(self.header))
        self.pending: list[list[str | None]] = []
        self.bad: list[pacsv.InvalidRow] = []

    def _sniff_padding(self) -> int:
        counts: dict[int, int] = {}
        try:
            with self.src.input.open_lines() as f:
                text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
                reader = csv.reader(text)
                next(reader, None)
                for i, row in enumerate(reader):
                    if i >= SNIFF_LINES:
                        break
                    extra = len(row) - len(self.header)
                    if row and extra > 0 and not any(v.strip() for v in row[len(self.header) :]):
                        counts[extra] = counts.get(extra, 0) + 1
                    elif row:
                        counts[0] = counts.get(0, 0) + 1
        except csv.Error as e:  # a stray quote runs a field on to the field size limit
            raise BadSourceFile(
                f"{self.src.name}: malformed CSV near line {reader.line_num}: {e}"
            ) from None
        except (OSError, EOFError, pa.ArrowException) as e:  # a gzip cut short, say
            raise BadSourceFile(f"{self.src.name}: cannot read the CSV: {e}") from None
        return max(counts, key=lambda k: (counts[k], -k)) if counts else 0

    def _on_invalid(self, row: pacsv.InvalidRow) -> Literal["skip"]:
        try:
            fields = next(csv.reader([row.text]), [])
        except csv.Error:  # a stray quote (field larger than field limit): a bad row
            self.bad.append(row)
            return "skip"
        h = len(self.header)
        if len(fields) >= h and not any(v.strip() for v in fields[h:]):
            fields = fields[:h] + [""] * (self.width - h)
            self.pending.append([v if v != "" else None for v in fields[: self.width]])
            self.src.stats.repaired_rows += 1
        else:
            self.bad.append(row)
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        name = self.src.name
        try:
            with self.src.input.open_stream() as stream:
                reader = pacsv.open_csv(
                    stream,  # type: ignore[arg-type]  # a NativeFile: the stubs omit it
                    read_options=pacsv.ReadOptions(
                        column_names=self.columns, skip_rows=1, block_size=CSV_BLOCK
                    ),
                    parse_options=pacsv.ParseOptions(invalid_row_handler=self._on_invalid),
                    convert_options=pacsv.ConvertOptions(
                        column_types=dict.fromkeys(self.columns, pa.string()),
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=True,
                    ),
                )
                for batch in reader:
                    yield batch
                    yield from self._flush()
        except (pa.ArrowException, OSError, EOFError) as e:
            raise BadSourceFile(f"{name}: unreadable CSV data: {e}") from None
        yield from self._flush()
        self._judge_bad_rows()

    def _flush(self) -> Iterator[pa.RecordBatch]:
        if self.pending:
            rows, self.pending = self.pending, []
            cols = list(zip(*rows, strict=True))
            yield pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols], names=self.columns
            )

    def _judge_bad_rows(self) -> None:
        if not self.bad:
            return
        if len(self.bad) == 1 and self._is_cut_off_last_line(self.bad[0].text):
            self.src.stats.truncated_last_row = 1
            return
        first = self.bad[0]
        number = first.number if first.number is not None else self._line_number(first.text)
        where = f"line {number}" if number is not None else "a line"
        raise BadSourceFile(
            f"{self.src.name}: {len(self.bad)} malformed CSV row(s); {where} has "
            f"{first.actual_columns} fields where the header has {len(self.header)}: "
            f"{first.text[:120]!r}"
        )

    def _line_number(self, text: str) -> int | None:
        """pyarrow's streaming reader does not know line numbers: find the line (error path)."""
        target = text.rstrip("\r").encode("utf-8")
        with self.src.input.open_lines() as f:
            for number, line in enumerate(f, start=1):
                if line.rstrip(b"\r\n") == target:
                    return number
        return None

    def _is_cut_off_last_line(self, text: str) -> bool:
        """True when ``text`` is the file's final line and the file ends without a newline."""
        tail = b""
        with self.src.input.open_lines() as f:
            while block := f.read(1 << 20):
                tail = (tail + block)[-(1 << 16) :]
        if not tail or tail.endswith(b"\n"):
            return False
        last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace").rstrip("\r")
        return last == text.rstrip("\r")
