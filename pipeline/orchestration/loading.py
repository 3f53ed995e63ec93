"""What each task does, as plain functions of the lake, the configuration and a sink: the
one place the stages meet (the tasks stay thin; the stages know nothing of each other).

The clean stage knows nothing of warehouses and the lake drives none: a load reads the
month's quality report from the lake, hands the files it lists to the sink, and logs the
month's one-line summary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import requests

from pipeline.domain import quality
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.extract import download
from pipeline.extract.download import ProgressFn, RetryPolicy
from pipeline.extract.sources import RawInput, open_source
from pipeline.extract.zones import read_zones
from pipeline.lake.lake import Lake, RawFile
from pipeline.sinks.base import CopyProgress, LoadRecord, Sink
from pipeline.transform import clean
from pipeline.transform.clean import CleanProgress

if TYPE_CHECKING:  # imported by UploadGCS only: a worker without GCS never loads the client
    from pipeline.lake.gcs_copy import GcsCopy, UploadProgress

log = logging.getLogger("pipeline.load")


def download_file(
    url: str,
    lake: Lake,
    raw_name: str,
    kind: str,
    policy: RetryPolicy,
    progress: ProgressFn | None = None,
    session: requests.Session | None = None,
) -> RawFile:
    """DownloadMonth and DownloadZones: the source's file, streamed into the lake."""
    return download.download(
        url, lake, raw_name, kind, policy=policy, progress=progress, session=session
    )


def forget_hint(key: MonthKey, start: str, then: str) -> str:
    """The command that removes the month's outputs from ``start`` on, so a rerun redoes them."""
    command = f"tlc-forget --color {key.color} --year {key.year} --month {key.month}"
    return f"run `{command} --from {start}`, then {then}"


def clean_report(lake: Lake, key: MonthKey) -> QualityReport:
    """The published clean month's report, its data objects checked to be there."""
    report = lake.read_quality(key)
    lake.require_data(
        lake.quality_name(key),
        lake.clean_files(key, report),
        forget_hint(key, "clean", "rerun to clean it again from the raw file"),
    )
    return report


def raw_input(lake: Lake, raw_name: str, remedy: str) -> tuple[RawInput, RawFile]:
    """The published raw file, to read, named as the TLC names it; ``remedy`` says how to get
    it back when its marker names a file that is gone."""
    raw = lake.raw(raw_name)
    if raw is None:
        raise FileNotFoundError(f"{lake.uri(raw_name)}: not downloaded into the lake")
    lake.require_data(lake.manifest_name(raw_name), [raw.name], remedy)
    store = lake.store
    return RawInput(store.filesystem, store.path(raw.name), raw_name.rsplit("/", 1)[-1]), raw


def clean_month(
    lake: Lake, key: MonthKey, kind: str, progress: CleanProgress | None = None
) -> QualityReport:
    """CleanParquet: the month's raw file in the lake -> its clean month in the lake."""
    remedy = forget_hint(key, "raw", "rerun to download it again")
    where, raw = raw_input(lake, lake.raw_name(key, kind), remedy)
    return clean.clean_month(
        open_source(where, kind), key, lake, source_manifest=raw.manifest, progress=progress
    )


def upload_month(
    lake: Lake, key: MonthKey, bucket: GcsCopy, progress: UploadProgress | None = None
) -> list[str]:
    """UploadGCS with a local lake: the published clean month, copied to the bucket."""
    clean_report(lake, key)  # one line when a data object is gone, before any upload
    folder = lake.store.local_path(lake.clean_prefix(key))
    if folder is None:  # pragma: no cover - UploadGCS runs this for a folder lake only
        raise ValueError(f"{lake.root} is not a folder")
    return bucket.upload_month(folder, key, progress=progress)


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


def load_month(
    lake: Lake, key: MonthKey, sink: Sink, sink_name: str, progress: CopyProgress | None = None
) -> LoadRecord:
    """LoadDuckDB and LoadPostgres (and LoadBigQuery from a lake on GCS): the published clean
    month into ``sink``. BigQuery reads the lake's objects itself; DuckDB and PostgreSQL's
    COPY read local files: the lake's own, or a temporary copy of a bucket's."""
    report = clean_report(lake, key)
    if sink_name == "bigquery":
        uris = [lake.uri(n) for n in lake.clean_files(key, report)]
        return load_files(sink, sink_name, report, uris, progress)
    with lake.local_clean_files(key, report) as paths:
        return load_files(sink, sink_name, report, [str(p) for p in paths], progress)


def load_zones(lake: Lake, sink: Sink) -> LoadRecord:
    """LoadZones: the zone lookup the lake holds, with the sha256 its download recorded."""
    marker = lake.uri(lake.manifest_name(lake.zones_name()))
    where, raw = raw_input(
        lake, lake.zones_name(), f"remove {marker}, then rerun to download it again"
    )
    return sink.load_zones(read_zones(where), str(raw.manifest["sha256"]))
