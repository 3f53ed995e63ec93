"""The Luigi graph. Tasks are thin: parameters, requires, output, and one call.

DownloadMonth -> CleanParquet -> LoadDuckDB                <- LoadZones(sink=duckdb)
                              -> LoadPostgres              <- LoadZones(sink=postgres)
                              -> UploadGCS -> LoadBigQuery <- LoadZones(sink=bigquery)
LoadZones <- DownloadZones
"""

from __future__ import annotations

from pathlib import Path

import luigi

from pipeline.domain import catalog
from pipeline.extract import download, zones
from pipeline.lake import local as lake
from pipeline.orchestration import backfill, config, preflight
from pipeline.orchestration import logs as logsafe
from pipeline.orchestration.targets import GcsMonthTarget, MonthLoadedTarget, ZonesLoadedTarget
from pipeline.transform import clean

# A Luigi event of ours: MonthPublished found the month not published (a 403/404), as opposed
# to not being able to tell (Luigi reports both as DEPENDENCY_MISSING). tlc-cron listens.
NOT_PUBLISHED = "tlc.month_not_published"


class PipelineTask(luigi.Task):
    """What every task here shares with luigid.

    The retry policy travels with each task to luigid (Luigi sends a task's own
    ``retry_count``/``disable_window``/``disable_hard_timeout`` with it), so a plain ``luigid``
    on Luigi's defaults treats our tasks as ``tlc-luigid`` does: after a failure luigid may
    offer the task once more (to a worker that is still running after ``[scheduler]
    retry_delay``, e.g. when the first worker died), and after two failures within an hour it
    disables it. Transient faults are retried inside the tasks, where their cause is known;
    a bad file is not retried at all. docs/operations.md has the whole policy.
    """

    retry_count = 2
    disable_window = 3600

    def complete(self) -> bool:
        if super().complete():
            return True
        # A task luigid has disabled would otherwise be "not run" and the run exit 0.
        preflight.raise_if_disabled(self.task_id, str(self))
        return False

    def on_failure(self, exception: BaseException) -> str:
        """What luigid, the visualizer and the failure e-mail show: one line for an expected
        error (a bad file, an unreachable host), Luigi's traceback for anything else."""
        line = logsafe.one_line(exception)
        return line if line is not None else str(super().on_failure(exception))


class MonthTask(PipelineTask):
    color = luigi.ChoiceParameter(
        choices=catalog.COLORS, default="yellow", description="yellow, green, fhv or fhvhv"
    )
    year = luigi.IntParameter(description="year of the trips, e.g. 2021")
    month = luigi.IntParameter(description="month of the trips, 1-12")

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


class MonthPublished(MonthTask, luigi.ExternalTask):
    """The TLC's file for the month exists (a HEAD request). An external task: when the month
    is not out yet, Luigi reports it as a missing dependency ([retcode] missing_data), not
    as a failure, and a backfill goes on with the other months. A source that cannot be
    reached at all raises SourceUnreachable: that is no evidence either way."""

    def complete(self) -> bool:
        src = config.source()
        raw = config.lake().get().raw_path(self.color, self.year, self.month, src.format)
        if raw.exists():
            return True
        published = download.is_published(src.url(self.color, self.year, self.month), src.policy())
        if not published:
            self.trigger_event(NOT_PUBLISHED, self)
        return published


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


class DownloadZones(PipelineTask):
    """The TLC taxi zone lookup CSV, into {lake}/raw/zones/."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(config.lake().get().zones_path())

    def run(self) -> None:
        src = config.source()
        download.download(src.zones_url, Path(self.output().path), "csv", policy=src.policy())


class LoadZones(PipelineTask):
    """taxi_zones (location_id, borough, zone, service_zone) in one warehouse."""

    sink = luigi.ChoiceParameter(
        choices=config.SINKS, default="duckdb", description="warehouse to load the zones into"
    )

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
        clean.load_month(
            clean_dir, config.sink(self.sink_name), self.report_copy, sink_name=self.sink_name
        )


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


class Backfill(PipelineTask, luigi.WrapperTask):
    """IngestMonth for every colour-month from --start to --end that is not done yet."""

    colors = luigi.Parameter(default="yellow", description="comma list, e.g. yellow,green")
    start = luigi.MonthParameter(description="first month, YYYY-MM")
    end = luigi.MonthParameter(description="last month, YYYY-MM (inclusive)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        backfill.parse_colors(self.colors)

    def requires(self) -> list[IngestMonth]:
        wanted = backfill.months(backfill.parse_colors(self.colors), self.start, self.end)
        names = config.pipeline().sink_names()
        done = backfill.complete_months(
            wanted, [config.sink(n) for n in names], config.lake().get()
        )
        return [
            IngestMonth(color=c, year=y, month=m) for c, y, m in wanted if (c, y, m) not in done
        ]
