"""The Luigi graph. Tasks are thin: parameters, requires, output, and one call.

DownloadMonth -> CleanParquet -> LoadDuckDB                <- LoadZones(sink=duckdb)
                              -> LoadPostgres              <- LoadZones(sink=postgres)
                              -> UploadGCS -> LoadBigQuery <- LoadZones(sink=bigquery)
LoadZones <- DownloadZones
"""

from __future__ import annotations

from pathlib import Path

import luigi

from pipeline import backfill, catalog, clean, config, download, lake, zones
from pipeline.targets import GcsMonthTarget, MonthLoadedTarget, ZonesLoadedTarget


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

    def report_copy(self, done: int, total: int) -> None:
        if total:
            self.set_progress_percentage(round(100 * done / total))
        self.set_status_message(f"COPY {done:,} of {total:,} rows")


class MonthPublished(MonthTask):
    """The TLC's file for the month exists (a HEAD request). An external task: when the month
    is not out yet, Luigi reports it as a missing dependency ([retcode] missing_data), not
    as a failure, and a backfill goes on with the other months."""

    run = None  # type: ignore[assignment]  (Luigi's mark of an external task)

    def complete(self) -> bool:
        src = config.source()
        raw = config.lake().get().raw_path(self.color, self.year, self.month, src.format)
        return raw.exists() or download.is_published(
            src.url(self.color, self.year, self.month), src.policy()
        )


class DownloadMonth(MonthTask):
    """Fetch the month's source file into {lake}/raw/{color}/ (atomic, verified, manifest)."""

    resources = {"downloads": 1}

    def requires(self) -> MonthPublished:
        return MonthPublished(**self.month_args)

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
    """taxi_zones (location_id, borough, zone, service_zone) in one warehouse."""

    sink = luigi.ChoiceParameter(choices=config.SINKS, default="duckdb")

    def requires(self) -> DownloadZones:
        return DownloadZones()

    def output(self) -> ZonesLoadedTarget:
        raw = Path(self.input().path)
        return ZonesLoadedTarget(config.sink(self.sink), lake.manifest_path(raw))

    def run(self) -> None:
        zones.load_zones(Path(self.input().path), config.sink(self.sink))


class _LoadMonth(MonthTask):
    """Replace the month in {color}_trips in one warehouse, atomically, with a load marker."""

    sink_name = ""

    def requires(self) -> dict[str, luigi.Task]:
        return {"clean": CleanParquet(**self.month_args), "zones": LoadZones(sink=self.sink_name)}

    def output(self) -> MonthLoadedTarget:
        clean_dir = config.lake().get().clean_dir(self.color, self.year, self.month)
        return MonthLoadedTarget(
            config.sink(self.sink_name), self.color, self.year, self.month, clean_dir
        )

    def run(self) -> None:
        self.set_status_message(f"loading into {self.sink_name}")
        clean_dir = Path(self.input()["clean"].path).parent
        clean.load_month(clean_dir, config.sink(self.sink_name), progress=self.report_copy)


class LoadDuckDB(_LoadMonth):
    """The month in {color}_trips of the DuckDB file (the embedded default)."""

    sink_name = "duckdb"
    resources = {"duckdb": 1}  # DuckDB allows one writing process per file


class LoadPostgres(_LoadMonth):
    """The month as the {color}_trips_YYYYMM partition of {schema}.{color}_trips."""

    sink_name = "postgres"
    resources = {"postgres_loads": 1}


class UploadGCS(MonthTask):
    """The clean month and its _quality.json, to gs://{bucket}/{prefix}/clean/... (crc32c)."""

    def requires(self) -> CleanParquet:
        return CleanParquet(**self.month_args)

    @property
    def clean_dir(self) -> Path:
        return config.lake().get().clean_dir(self.color, self.year, self.month)

    def output(self) -> GcsMonthTarget:
        return GcsMonthTarget(config.gcs().get(), self.clean_dir, **self.month_args)

    def run(self) -> None:
        config.gcs().get().upload_month(
            self.clean_dir, **self.month_args, progress=self.report_bytes
        )


class LoadBigQuery(_LoadMonth):
    """The month in {dataset}.{color}_trips (MONTH-partitioned), from its objects on GCS."""

    sink_name = "bigquery"

    def requires(self) -> dict[str, luigi.Task]:
        return {"gcs": UploadGCS(**self.month_args), "zones": LoadZones(sink=self.sink_name)}

    def run(self) -> None:
        self.set_status_message("loading into BigQuery")
        sink = config.sink(self.sink_name)
        config.gcs().get().load_month(sink, **self.month_args, progress=self.report_copy)


class IngestMonth(MonthTask, luigi.WrapperTask):
    """One month into every warehouse named in [pipeline] sinks."""

    def requires(self) -> list[luigi.Task]:
        tasks = {"duckdb": LoadDuckDB, "postgres": LoadPostgres, "bigquery": LoadBigQuery}
        return [tasks[name](**self.month_args) for name in config.pipeline().sink_names()]


class Backfill(luigi.WrapperTask):
    """IngestMonth for every colour-month from --start to --end that is not done yet."""

    colors = luigi.Parameter(default="yellow", description="comma list, e.g. yellow,green")
    start = luigi.MonthParameter()
    end = luigi.MonthParameter()

    def requires(self) -> list[IngestMonth]:
        wanted = backfill.months(backfill.parse_colors(self.colors), self.start, self.end)
        names = config.pipeline().sink_names()
        done = backfill.complete_months(
            wanted, [config.sink(n) for n in names], config.lake().get()
        )
        return [
            IngestMonth(color=c, year=y, month=m) for c, y, m in wanted if (c, y, m) not in done
        ]
