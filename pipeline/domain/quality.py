"""The quality report of a clean month (``_quality.json``): its type, one reader, one writer.

CleanParquet writes it beside the month's parquet, last, so that its presence means the month
is complete. Every later stage reads it through :func:`parse`: the loads (rows to expect, the
files to load), the targets (is the warehouse's copy this clean month?), the GCS copy (sizes
and checksums), the status grid and the report.
"""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict

from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey

FILE_NAME = "_quality.json"


class CleanFile(TypedDict):
    name: str
    rows: int
    bytes: int
    sha256: str
    crc32c: NotRequired[str]


class SourceManifest(TypedDict, total=False):
    """What DownloadMonth recorded about the raw file (``*.manifest.json``)."""

    url: str
    format: str
    bytes: int
    sha256: str
    etag: str | None
    last_modified: str | None
    attempts: int
    downloaded_at: str
    object: str  # the data object's name in the lake (absent in lakes of before 0.12)


class QualityReport(TypedDict):
    color: str
    year: int
    month: int
    source_file: str
    source_format: str
    source_manifest: SourceManifest | None
    column_map: dict[str, list[str]]
    rows_in: int
    rows_out: int
    rows_dropped: dict[str, int]  # rule -> rows it dropped (first rule that applies)
    rows_repaired: int
    nulls: dict[str, int]  # canonical column -> nulls among the rows kept
    files: list[CleanFile]
    compression: str
    code_version: str
    cleaned_at: str


_REQUIRED = QualityReport.__required_keys__


def parse(text: str | bytes, where: str) -> QualityReport:
    """The report in ``text``; ``where`` names its file in the error if it is not one."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise PipelineError(f"{where}: not a quality report: {e}") from None
    missing = _REQUIRED - set(data) if isinstance(data, dict) else _REQUIRED
    if missing:
        raise PipelineError(f"{where}: not a quality report, it lacks {sorted(missing)}")
    report: QualityReport = data
    return report


def dump(report: QualityReport) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"


def key(report: QualityReport) -> MonthKey:
    return MonthKey(report["color"], report["year"], report["month"])


def clean_sha256(report: QualityReport) -> str:
    """Names the clean data a load was made from: the sha256 of its files, in order."""
    return ",".join(f["sha256"] for f in report["files"])


def source_sha256(report: QualityReport) -> str:
    return (report["source_manifest"] or {}).get("sha256") or ""


def label(report: QualityReport) -> str:
    return f"{report['color']} {report['year']:04d}-{report['month']:02d}"


def rows_line(report: QualityReport) -> str:
    """``76,518 rows in, 76,368 out (dropped passenger_count_zero 147, ...)``, for log lines."""
    dropped = ", ".join(f"{k} {v:,}" for k, v in report["rows_dropped"].items() if v)
    return (
        f"{report['rows_in']:,} rows in, {report['rows_out']:,} out (dropped {dropped or 'none'})"
    )
