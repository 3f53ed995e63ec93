"""Luigi targets for warehouse loads: a load is complete when its marker row says so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import luigi

from pipeline.lake import local as lake
from pipeline.sinks import base as sinks
from pipeline.sinks.base import Sink

if TYPE_CHECKING:
    from pipeline.lake.gcs import GcsLake


class MonthLoadedTarget(luigi.Target):
    """Exists when ``sink`` holds a load marker for the month that matches the clean month's
    quality report (when the lake still has it)."""

    def __init__(self, sink: Sink, color: str, year: int, month: int, clean_dir: Path):
        self.sink, self.color, self.year, self.month = sink, color, year, month
        self.clean_dir = clean_dir

    def exists(self) -> bool:
        quality_path = self.clean_dir / lake.QUALITY_FILE
        quality = lake.read_json(quality_path) if quality_path.exists() else None
        return sinks.marker_matches(self.sink.loaded(self.color, self.year, self.month), quality)


class ZonesLoadedTarget(luigi.Target):
    def __init__(self, sink: Sink, raw_manifest: Path):
        self.sink, self.raw_manifest = sink, raw_manifest

    def exists(self) -> bool:
        marker = self.sink.loaded("taxi_zones", 0, 0)
        if marker is None:
            return False
        if not self.raw_manifest.exists():
            return True
        return marker["source_sha256"] == lake.read_json(self.raw_manifest)["sha256"]


class GcsMonthTarget(luigi.Target):
    """Exists when every object of the month is in the bucket with the local file's size and
    crc32c (one list request)."""

    def __init__(self, gcs: GcsLake, clean_dir: Path, color: str, year: int, month: int):
        self.gcs, self.clean_dir = gcs, clean_dir
        self.color, self.year, self.month = color, year, month

    def exists(self) -> bool:
        return self.gcs.month_complete(self.clean_dir, self.color, self.year, self.month)
