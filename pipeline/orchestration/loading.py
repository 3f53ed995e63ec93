"""Loading what the lake holds into a sink: the one place the stages meet a warehouse.

The clean stage knows nothing of warehouses and the lake drives none (``GcsLake`` uploads;
it does not load): a load task reads the month's quality report from the lake, hands the
files it lists to the sink, and logs the month's one-line summary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pipeline.domain import quality
from pipeline.domain.quality import QualityReport
from pipeline.extract.zones import read_zones
from pipeline.lake import local as lake
from pipeline.sinks.base import CopyProgress, LoadRecord, Sink

log = logging.getLogger("pipeline.load")


def load_files(
    sink: Sink,
    sink_name: str,
    report: QualityReport,
    files: Sequence[str],
    progress: CopyProgress | None = None,
) -> LoadRecord:
    """Load the clean month ``files`` (as ``report`` lists them) and log its summary line."""
    record = sink.replace_month(report, files, progress)
    log.info(
        "%s -> %s: %s, loaded in %.1f s",
        quality.label(report),
        sink_name,
        quality.rows_line(report),
        record.seconds,
    )
    return record


def load_clean_month(
    clean_dir: Path, sink: Sink, sink_name: str, progress: CopyProgress | None = None
) -> LoadRecord:
    """Load a published clean month of the local lake."""
    report = lake.read_quality(clean_dir)
    files = [str(clean_dir / f["name"]) for f in report["files"]]
    return load_files(sink, sink_name, report, files, progress)


def load_zones(path: Path, sink: Sink) -> LoadRecord:
    """The zone lookup the lake holds, with the sha256 its download recorded."""
    sha256 = str(lake.read_json(lake.manifest_path(path))["sha256"])
    return sink.load_zones(read_zones(path), sha256)
