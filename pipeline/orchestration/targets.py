"""Luigi targets, one per kind of store (as in luigi.contrib), the same on a folder lake and
a bucket lake: a lake stage is complete when its marker is published, a load when its
ledger row says so, and says it is of the clean month at hand."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import luigi

from pipeline.domain.months import MonthKey
from pipeline.lake.lake import Lake
from pipeline.observe import report
from pipeline.sinks.base import Sink

if TYPE_CHECKING:
    from pipeline.lake.gcs_copy import GcsCopy


class RawFileTarget(luigi.Target):
    """Exists when the lake has published the raw file ``raw_name`` (its manifest, which is
    written last, names its data)."""

    def __init__(self, lake: Lake, raw_name: str):
        self.lake, self.raw_name = lake, raw_name

    @property
    def path(self) -> str:
        return self.lake.uri(self.raw_name)

    def exists(self) -> bool:
        return self.lake.raw(self.raw_name) is not None


class CleanMonthTarget(luigi.Target):
    """Exists when the lake has published the clean month (its ``_quality.json``, written
    last, lists its parts)."""

    def __init__(self, lake: Lake, key: MonthKey):
        self.lake, self.key = lake, key

    @property
    def path(self) -> str:
        return self.lake.uri(self.lake.quality_name(self.key))

    def exists(self) -> bool:
        return self.lake.store.exists(self.lake.quality_name(self.key))


class MonthLoadedTarget(luigi.Target):
    """Exists when ``sink``'s ledger has the month, loaded from the clean month the lake
    holds (when the lake still has it)."""

    def __init__(self, sink: Sink, key: MonthKey, lake: Lake):
        self.sink, self.key, self.lake = sink, key, lake

    def exists(self) -> bool:
        record = self.sink.loaded(self.key)
        return record is not None and record.matches(self.lake.quality(self.key))


class ZonesLoadedTarget(luigi.Target):
    """Exists when ``sink``'s ledger has the zones, from the lookup the lake holds."""

    def __init__(self, sink: Sink, lake: Lake):
        self.sink, self.lake = sink, lake

    def exists(self) -> bool:
        record = self.sink.zones_loaded()
        if record is None:
            return False
        raw = self.lake.raw(self.lake.zones_name())
        return raw is None or record.source_sha256 == raw.manifest.get("sha256")


class GcsMonthTarget(luigi.Target):
    """Exists when every object of the local lake's clean month is in UploadGCS's bucket
    with the local file's size and crc32c (one list request)."""

    def __init__(self, copy: GcsCopy, lake: Lake, key: MonthKey):
        self.copy, self.lake, self.key = copy, lake, key

    def exists(self) -> bool:
        folder = self.lake.store.local_path(self.lake.clean_prefix(self.key))
        assert folder is not None, "UploadGCS copies a local lake"
        return self.copy.month_complete(folder, self.key)


class ReportTarget(luigi.Target):
    """Exists when the report file at ``path`` was drawn from the lake and ledgers as they
    are now (the fingerprint in its head), so a report is drawn again after any load."""

    def __init__(self, path: Path, lake: Lake, sinks: Mapping[str, Sink]):
        self.path, self.lake, self.sinks = path, lake, sinks

    def exists(self) -> bool:
        return report.is_current(self.path, self.lake, self.sinks)
