"""Luigi targets for the loads and the GCS copy: a load is complete when its ledger row says
so, and says it is of the clean month at hand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import luigi

from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.sinks.base import Sink

if TYPE_CHECKING:
    from pipeline.lake.gcs import GcsLake


class MonthLoadedTarget(luigi.Target):
    """Exists when ``sink``'s ledger has the month, loaded from the clean month whose quality
    report is at ``quality_path`` (when the lake still has it)."""

    def __init__(self, sink: Sink, key: MonthKey, quality_path: Path):
        self.sink, self.key, self.quality_path = sink, key, quality_path

    def exists(self) -> bool:
        record = self.sink.loaded(self.key)
        return record is not None and record.matches(lake.quality_if_present(self.quality_path))


class ZonesLoadedTarget(luigi.Target):
    """Exists when ``sink``'s ledger has the zones, from the lookup the lake holds."""

    def __init__(self, sink: Sink, raw_manifest: Path):
        self.sink, self.raw_manifest = sink, raw_manifest

    def exists(self) -> bool:
        record = self.sink.zones_loaded()
        if record is None:
            return False
        if not self.raw_manifest.exists():
            return True
        return record.source_sha256 == lake.read_json(self.raw_manifest)["sha256"]


class GcsMonthTarget(luigi.Target):
    """Exists when every object of the month is in the bucket with the local file's size and
    crc32c (one list request)."""

    def __init__(self, gcs: GcsLake, clean_dir: Path, key: MonthKey):
        self.gcs, self.clean_dir, self.key = gcs, clean_dir, key

    def exists(self) -> bool:
        return self.gcs.month_complete(self.clean_dir, self.key)
