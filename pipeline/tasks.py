"""The Luigi graph. Tasks are thin: parameters, requires, output, and one call.

DownloadMonth -> CleanParquet -> LoadDuckDB <- LoadZones <- DownloadZones
"""

from __future__ import annotations

from pathlib import Path

import luigi

from pipeline import catalog, clean, config, download, lake, zones
from pipeline.targets import MonthLoadedTarget, ZonesLoadedTarget


class MonthTask(luigi.Task):
    color = luigi.ChoiceParameter(choices=catalog.COLORS, default="yellow")
    year = luigi.IntParameter()
    month = luigi.IntParameter()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        catalog.check_month(self.color, self.year, self.month)

    @property
    def month_args(self) -> dict:
        return {"color": self.color, "year": self.year, "month": self.month}

    def report_bytes(self, done: int, total: int | None, rate: float) -> None:
        mb = 1024 * 1024
        if total:
            self.set_progress_percentage(round(100 * done / total))
            msg = f"{done / mb:.0f} MB of {total / mb:.0f} MB, {rate / mb:.1f} MB/s"
        else:
            msg = f"{done / mb:.0f} MB, {rate / mb:.1f} MB/s"
        self.set_status_message(msg)

    def report_rows(self, rows: int, message: str) -> None:
        self.set_status_message(message)


class DownloadMonth(MonthTask):
    """Fetch the month's source file into {lake}/raw/{color}/ (atomic, verified, manifest)."""

    resources = {"downloads": 1}

    def output(self) -> luigi.LocalTarget:
        fmt = config.source().format
        return luigi.LocalTarget(
            config.lake().get().raw_path(self.color, self.year, self.month, fmt)
        )

    def run(self) -> None:
        src = config.source()
        download.download(
            src.url(self.color, self.year, self.month),
            Path(self.output().path),
            src.format,
            policy=src.policy(),
            progress=self.report_bytes,
        )


class CleanParquet(MonthTask):
    """Raw month -> canonical parquet + _quality.json in {lake}/clean/{color}/year=/month=/."""

    def requires(self) -> DownloadMonth:
        return DownloadMonth(**self.month_args)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.clean_dir / lake.QUALITY_FILE)

    @property
    def clean_dir(self) -> Path:
        return config.lake().get().clean_dir(self.color, self.year, self.month)

    def run(self) -> None:
        raw = Path(self.input().path)
        clean.clean_month(
            raw,
            config.source().format,
            self.color,
            self.year,
            self.month,
            self.clean_dir,
            source_manifest=lake.read_json(lake.manifest_path(raw)),
            progress=self.report_rows,
        )


class DownloadZones(luigi.Task):
    """The TLC taxi zone lookup CSV, into {lake}/raw/zones/."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(config.lake().get().zones_path())

    def run(self) -> None:
        src = config.source()
        download.download(src.zones_url, Path(self.output().path), "csv", policy=src.policy())


class LoadZones(luigi.Task):
    """taxi_zones (location_id, borough, zone, service_zone) in the DuckDB warehouse."""

    def requires(self) -> DownloadZones:
        return DownloadZones()

    def output(self) -> ZonesLoadedTarget:
        raw = Path(self.input().path)
        return ZonesLoadedTarget(config.duckdb().get(), lake.manifest_path(raw))

    def run(self) -> None:
        zones.load_zones(Path(self.input().path), config.duckdb().get())


class LoadDuckDB(MonthTask):
    """Replace the month in {color}_trips in the DuckDB file, atomically, with a load marker."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"clean": CleanParquet(**self.month_args), "zones": LoadZones()}

    def output(self) -> MonthLoadedTarget:
        clean_dir = config.lake().get().clean_dir(self.color, self.year, self.month)
        wh = config.duckdb().get()
        return MonthLoadedTarget(wh, self.color, self.year, self.month, clean_dir)

    def run(self) -> None:
        self.set_status_message("loading into DuckDB")
        clean.load_month(Path(self.input()["clean"].path).parent, config.duckdb().get())
