"""The Luigi graph. Tasks are thin: parameters, requires, output, and one call.

DownloadMonth -> CleanParquet -> LoadDuckDB                <- LoadZones(sink=duckdb)
                              -> LoadPostgres              <- LoadZones(sink=postgres)
                              -> UploadGCS -> LoadBigQuery <- LoadZones(sink=bigquery)
LoadZones <- DownloadZones
Backfill --report -> Report -> Backfill (its months first, then the quality report)

With the lake on GCS (``[lake] root = "gs://..."``) LoadBigQuery loads the lake's own
objects, and UploadGCS has nothing to copy: it is complete when CleanParquet is.
"""

from __future__ import annotations

from pathlib import Path

import luigi

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey
from pipeline.extract import download
from pipeline.lake.lake import Lake
from pipeline.observe import report as quality_report
from pipeline.orchestration import backfill, config, loading, logs, preflight
from pipeline.orchestration.targets import (
    CleanMonthTarget,
    GcsMonthTarget,
    MonthLoadedTarget,
    RawFileTarget,
    ReportTarget,
    ZonesLoadedTarget,
)
from pipeline.sinks.base import Sink

# A Luigi event of ours: MonthPublished found the month not published (a 403/404), as opposed
# to not being able to tell (Luigi reports both as DEPENDENCY_MISSING). tlc-cron listens.
NOT_PUBLISHED = "tlc.month_not_published"
REPORT_PATH = "data/report.html"  # tlc-report's default too


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
        line = logs.one_line(exception)
        return line if line is not None else str(super().on_failure(exception))


class MonthTask(PipelineTask):
    color = luigi.ChoiceParameter(
        choices=catalog.COLORS, default="yellow", description="yellow, green, fhv or fhvhv"
    )
    year = luigi.IntParameter(description="year of the trips, e.g. 2021")
    month = luigi.IntParameter(description="month of the trips, 1-12")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.key = MonthKey(self.color, self.year, self.month)  # checks the month exists

    @property
    def priority(self) -> int:  # type: ignore[override]
        """Luigi starts the runnable task of highest priority first: the biggest months."""
        return catalog.TYPICAL_MONTH_MILLION_ROWS[self.color]

    @property
    def month_args(self) -> dict[str, object]:
        return {"color": self.color, "year": self.year, "month": self.month}

    @property
    def lake(self) -> Lake:
        return config.lake().get()

    def report(self, message: str, done: int = 0, total: int | None = None) -> None:
        """Progress for luigid's visualizer. Luigi attaches the callbacks only while the task
        runs in a worker (they are None in a plain call, e.g. a test's)."""
        if total and self.set_progress_percentage is not None:
            self.set_progress_percentage(round(100 * done / total))
        if self.set_status_message is not None:
            self.set_status_message(message)

    def report_bytes(self, done: int, total: int | None, rate: float) -> None:
        mb = 1024 * 1024
        if total:
            msg = f"{done / mb:.0f} MB of {total / mb:.0f} MB, {rate / mb:.1f} MB/s"
        else:
            msg = f"{done / mb:.0f} MB, {rate / mb:.1f} MB/s"
        self.report(msg, done, total)

    def report_rows(self, rows: int) -> None:
        self.report(f"cleaned {rows:,} rows")

    def report_copy(self, done: int, total: int) -> None:
        self.report(f"COPY {done:,} of {total:,} rows", done, total)


class MonthPublished(MonthTask, luigi.ExternalTask):
    """The TLC's file for the month exists (a HEAD request). An external task: when the month
    is not out yet, Luigi reports it as a missing dependency ([retcode] missing_data), not
    as a failure, and a backfill goes on with the other months. A source that cannot be
    reached at all raises SourceUnreachable: that is no evidence either way."""

    def complete(self) -> bool:
        src = config.source()
        if RawFileTarget(self.lake, self.lake.raw_name(self.key, src.format)).exists():
            return True
        published = download.is_published(src.url(self.key), src.policy())
        if not published:
            self.trigger_event(NOT_PUBLISHED, self)
        return published


# Above any month's size in catalog.TYPICAL_MONTH_MILLION_ROWS: a download outranks every clean
# and load.
DOWNLOADS_FIRST = 100


class DownloadMonth(MonthTask):
    """Stream the month's source file into {lake}/raw/{color}/ (verified; its manifest,
    written last and create-only, publishes it)."""

    resources = {"downloads": 1}

    @property
    def priority(self) -> int:  # type: ignore[override]
        """Downloads go smallest month first, each ahead of every clean and load (a task's
        own priority may exceed its dependents'; Luigi only raises a dependency's to theirs).
        The first months arrive in a second, so the other worker has work while the big
        months download; the cleans and loads still take the biggest month first. 8 months,
        two runs each: cores 94 % busy instead of 86 %, 204 s instead of 210 and 244 s
        (benchmarks/README.md, "Backfill")."""
        return DOWNLOADS_FIRST - catalog.TYPICAL_MONTH_MILLION_ROWS[self.color]

    def requires(self) -> MonthPublished:
        return MonthPublished(**self.month_args)

    def output(self) -> RawFileTarget:
        return RawFileTarget(self.lake, self.lake.raw_name(self.key, config.source().format))

    def run(self) -> None:
        src = config.source()
        raw_name = self.lake.raw_name(self.key, src.format)
        loading.download_file(
            src.url(self.key), self.lake, raw_name, src.format, src.policy(), self.report_bytes
        )


class CleanParquet(MonthTask):
    """Raw month -> canonical parquet + _quality.json in {lake}/clean/{color}/year=/month=/
    (the report, written last and create-only, publishes the month)."""

    def requires(self) -> DownloadMonth:
        return DownloadMonth(**self.month_args)

    def output(self) -> CleanMonthTarget:
        return CleanMonthTarget(self.lake, self.key)

    def run(self) -> None:
        loading.clean_month(self.lake, self.key, config.source().format, self.report_rows)


class DownloadZones(PipelineTask):
    """The TLC taxi zone lookup CSV, into {lake}/raw/zones/."""

    def output(self) -> RawFileTarget:
        the_lake = config.lake().get()
        return RawFileTarget(the_lake, the_lake.zones_name())

    def run(self) -> None:
        src = config.source()
        the_lake = config.lake().get()
        loading.download_file(src.zones_url, the_lake, the_lake.zones_name(), "csv", src.policy())


class LoadZones(PipelineTask):
    """taxi_zones (location_id, borough, zone, service_zone) in one warehouse."""

    sink = luigi.ChoiceParameter(
        choices=config.SINKS, default="duckdb", description="warehouse to load the zones into"
    )

    def requires(self) -> DownloadZones:
        return DownloadZones()

    def output(self) -> ZonesLoadedTarget:
        return ZonesLoadedTarget(config.sink(self.sink), config.lake().get())

    def run(self) -> None:
        loading.load_zones(config.lake().get(), config.sink(self.sink))


class _LoadMonth(MonthTask):
    """Replace the month in {color}_trips in one warehouse, atomically, with its ledger row."""

    sink_name = ""

    def requires(self) -> dict[str, luigi.Task]:
        return {"clean": CleanParquet(**self.month_args), "zones": LoadZones(sink=self.sink_name)}

    def output(self) -> MonthLoadedTarget:
        return MonthLoadedTarget(config.sink(self.sink_name), self.key, self.lake)

    def run(self) -> None:
        self.report(f"loading into {self.sink_name}")
        loading.load_month(
            self.lake, self.key, config.sink(self.sink_name), self.sink_name, self.report_copy
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
    """The local lake's clean month and its _quality.json, to gs://{bucket}/{prefix}/clean/...
    (crc32c-checked). With the lake on GCS there is nothing to copy: its output is the
    clean month itself."""

    def requires(self) -> CleanParquet:
        return CleanParquet(**self.month_args)

    def output(self) -> GcsMonthTarget | CleanMonthTarget:
        if config.lake().on_gcs():
            return CleanMonthTarget(self.lake, self.key)
        return GcsMonthTarget(config.gcs().get(), self.lake, self.key)

    def run(self) -> None:
        if config.lake().on_gcs():
            return  # complete as soon as CleanParquet is
        loading.upload_month(self.lake, self.key, config.gcs().get(), self.report_bytes)


class LoadBigQuery(_LoadMonth):
    """The month in {dataset}.{color}_trips (MONTH-partitioned), from its objects on GCS as
    their _quality.json lists them: the lake's own when the lake is on GCS, else UploadGCS's
    copy."""

    sink_name = "bigquery"

    def requires(self) -> dict[str, luigi.Task]:
        month = CleanParquet if config.lake().on_gcs() else UploadGCS
        return {"clean": month(**self.month_args), "zones": LoadZones(sink=self.sink_name)}

    def run(self) -> None:
        self.report("loading into BigQuery")
        sink = config.sink(self.sink_name)
        if config.lake().on_gcs():
            loading.load_month(self.lake, self.key, sink, self.sink_name, self.report_copy)
            return
        copy = config.gcs().get()
        report = copy.read_quality(self.key)
        uris = copy.data_uris(self.key, report)
        loading.load_files(sink, self.sink_name, report, uris, self.report_copy)


# The load task of each sink, by the sink's name in config.SINKS.
LOAD_TASKS: dict[str, type[_LoadMonth]] = {
    t.sink_name: t for t in (LoadDuckDB, LoadPostgres, LoadBigQuery)
}


class IngestMonth(MonthTask, luigi.WrapperTask):
    """One month into every warehouse named in [pipeline] sinks."""

    def requires(self) -> list[luigi.Task]:
        return [LOAD_TASKS[name](**self.month_args) for name in config.pipeline().sink_names()]


class Backfill(PipelineTask, luigi.WrapperTask):
    """IngestMonth for every colour-month from --start to --end that is not done yet; with
    --report, then the quality report (Report) of the whole lake."""

    colors = luigi.Parameter(default="yellow", description="comma list, e.g. yellow,green")
    start = luigi.MonthParameter(description="first month, YYYY-MM")
    end = luigi.MonthParameter(description="last month, YYYY-MM (inclusive)")
    report = luigi.BoolParameter(
        default=False, description="end with the quality report (Report, --report-path)"
    )
    report_path = luigi.Parameter(
        default=REPORT_PATH, description="where --report writes the report's HTML"
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        backfill.parse_colors(self.colors)
        if self.start > self.end:  # else an empty backfill, "done" with nothing done
            raise BadParameter(
                f"--start {self.start:%Y-%m} is after --end {self.end:%Y-%m}: nothing to do"
            )

    def requires(self) -> list[luigi.Task]:
        if self.report:
            # Report waits for this same backfill without --report: the months first.
            return [Report(path=self.report_path, after=self.months_only().to_str_params())]
        return self.missing_months()

    def months_only(self) -> Backfill:
        return Backfill(colors=self.colors, start=self.start, end=self.end)

    def missing_months(self) -> list[luigi.Task]:
        keys = backfill.wanted(backfill.parse_colors(self.colors), self.start, self.end)
        names = config.pipeline().sink_names()
        the_lake = config.lake().get()
        done = backfill.complete_months(keys, [config.sink(n) for n in names], the_lake)
        return [
            IngestMonth(color=k.color, year=k.year, month=k.month) for k in keys if k not in done
        ]


class Report(PipelineTask):
    """The quality report of the whole lake and the ledgers of [pipeline] sinks: one
    self-contained HTML file (pipeline/observe/report.py). Complete while the file was drawn
    from the lake and ledgers as they are now, so it is drawn again after any load.

    ``after`` holds a Backfill's parameters (how ``Backfill --report`` asks for it): the
    report then waits for those months."""

    path = luigi.Parameter(default=REPORT_PATH, description="the report's HTML file")
    after = luigi.DictParameter[dict[str, str]](
        default={}, description="a Backfill's parameters to wait for (Backfill --report sets it)"
    )

    def requires(self) -> list[luigi.Task]:
        return [Backfill.from_str_params(dict(self.after))] if self.after else []

    def sinks(self) -> dict[str, Sink]:
        return {n: config.sink(n) for n in config.pipeline().sink_names()}

    def output(self) -> ReportTarget:
        return ReportTarget(Path(self.path), config.lake().get(), self.sinks())

    def complete(self) -> bool:
        # A report that matches the state before the backfill's loads must not hide them:
        # Luigi never runs the requirements of a complete task.
        if not all(t.complete() for t in luigi.task.flatten(self.requires())):
            return False
        return super().complete()

    def run(self) -> None:
        written = quality_report.write_report(config.lake().get(), self.sinks(), Path(self.path))
        if self.set_status_message is not None:
            self.set_status_message(
                f"{written.months} months, {len(written.anomalies)} anomalies: {written.path}"
            )
