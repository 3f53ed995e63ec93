"""Cleaning a local file into a folder lake, and reading a lake's clean month back, as the
stages do (CleanParquet cleans a raw file the lake holds; these tests bring their own)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.extract.sources import RawInput, open_source
from pipeline.lake.lake import Lake, local
from pipeline.orchestration.loading import load_month
from pipeline.sinks.base import Sink
from pipeline.transform.clean import clean_month


def clean_file(raw: Path, kind: str, key: MonthKey, root: Path, **kw: Any) -> QualityReport:
    """Clean the local file ``raw`` into the folder lake at ``root`` and publish it."""
    return clean_month(open_source(RawInput.local(raw), kind), key, local(root), **kw)


def clean_paths(root: Path | Lake, key: MonthKey) -> list[Path]:
    """The published month's parquet files (as its _quality.json lists them)."""
    lake = root if isinstance(root, Lake) else local(root)
    report = lake.read_quality(key)
    paths = [lake.store.local_path(n) for n in lake.clean_files(key, report)]
    assert all(p is not None for p in paths)
    return [p for p in paths if p is not None]


def clean_table(root: Path | Lake, key: MonthKey) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in clean_paths(root, key)])


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, temporaries included (empty folders are not files)."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Cleaned:
    """A month cleaned into a folder lake of the test's own."""

    root: Path
    key: MonthKey

    @property
    def lake(self) -> Lake:
        return local(self.root)

    @property
    def report(self) -> QualityReport:
        """A fresh copy of its quality report (tests may change it)."""
        return self.lake.read_quality(self.key)

    @property
    def paths(self) -> list[str]:
        return [str(p) for p in clean_paths(self.root, self.key)]

    def load(self, sink: Sink, sink_name: str) -> int:
        """Load it as the load tasks do; return the rows loaded."""
        return load_month(self.lake, self.key, sink, sink_name).rows_out


def clean_into(raw: Path, kind: str, key: MonthKey, root: Path) -> Cleaned:
    clean_file(raw, kind, key, root)
    return Cleaned(root, key)
