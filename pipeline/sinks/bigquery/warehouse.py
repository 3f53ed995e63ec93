"""BigQuery sink: ``{dataset}.{color}_trips``, MONTH-partitioned on ``pickup_datetime``,
clustered by ``pu_location_id``, loaded from the month's objects on GCS.

How a month is replaced, and why:

1. A load job copies the month's ``gs://`` parquet into ``_stage_{color}_{YYYYMM}_{crc}`` with
   WRITE_TRUNCATE and the explicit schema (never autodetect: the schema comes from the
   catalog, like every other sink's). Its row count is checked against the clean month's
   quality report.
2. One multi-statement transaction deletes the month from the table, inserts the stage, and
   replaces the month's row of the load ledger ``_pipeline_loads``. Readers see the old month
   or the new one; the ledger row and the rows commit together. Every value in it is a query
   parameter.
3. The stage is dropped, and the view ``{color}_tripdata`` (the table under the TLC's column
   names) is made again by a query job of its own; a view that cannot be made only warns.

Jobs have deterministic ids (``jobs.py``), made of the dataset, colour, month, a hash of the
month's crc32c values, and an attempt number: a rerun that finds its id taken resumes that job
instead of loading twice, as dlt does.

luigi.contrib.bigquery is not used: its BigQueryTarget only checks that a table exists, so after
one month every month of an appended table would look complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.sinks.base import (
    LEDGER,
    LEDGER_COLUMNS,
    LEDGER_TABLE,
    MONTH,
    ZONES,
    CopyProgress,
    LoadRecord,
    latest,
)
from pipeline.sinks.bigquery.jobs import (
    CONCURRENT_UPDATE,
    MAX_ATTEMPTS,
    Job,
    insert_retry,
    run_job,
    wait_to_retry,
)
from pipeline.util.gcp_retry import FAILED, one_line, why
from pipeline.util.per_process import per_process

log = logging.getLogger(__name__)

ZONES_TABLE = catalog.ZONES_TABLE
CLUSTER_BY = ("pu_location_id",)
STAGE_PREFIX = "_stage_"
# A month's load job, count and swap take minutes: a stage this old is no load's any more.
STAGE_MAX_AGE = dt.timedelta(hours=24)

# The TLC's times are naive New York local times: DATETIME, not TIMESTAMP (which is an instant
# in UTC and would make every reader think about zones the data does not have). The ledger's
# loaded_at is naive UTC, as in every sink.
_BQ_TYPES = {
    pa.timestamp("us"): "DATETIME",
    pa.int32(): "INT64",
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.string(): "STRING",
}

# BigQuery's own naming rules. The client offers no identifier quoting, so names are validated
# against these and then backtick-quoted, in one place (``sql_name``).
_PROJECT = re.compile(r"^[a-z][a-z0-9.:-]{4,61}[a-z0-9]$|^[a-z0-9-]{1,63}$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$")

T = TypeVar("T")
P = ParamSpec("P")


def bq_schema(fields: Sequence[tuple[str, pa.DataType]]) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(n, _BQ_TYPES[t], mode="NULLABLE") for n, t in fields]


def _fields(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in schema]


@per_process
def bigquery_client(project: str, location: str, api_endpoint: str = "") -> bigquery.Client:
    """One client per process (a forked task process makes its own:
    pipeline/util/per_process.py). ``api_endpoint`` is for emulators only (anonymous access)."""
    if api_endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
    return bigquery.Client(project=project or None, location=location)


class BigQueryWarehouse:
    def __init__(self, client: bigquery.Client, dataset: str, location: str = "US"):
        if not _DATASET.match(dataset or ""):
            raise PipelineError(
                f"[bigquery] dataset {dataset!r} is not a BigQuery dataset name "
                "(letters, digits and underscores only)"
            )
        if not _PROJECT.match(client.project or ""):
            raise PipelineError(f"[bigquery] project {client.project!r} is not a project id")
        self.client = client
        self.dataset = dataset
        self.location = location

    def __repr__(self) -> str:
        return f"BigQueryWarehouse({self.client.project}.{self.dataset}, {self.location})"

    # -- names ----------------------------------------------------------------------------------
    def table_id(self, table: str) -> str:
        if not _TABLE.match(table):
            raise PipelineError(f"not a BigQuery table name: {table!r}")
        return f"{self.client.project}.{self.dataset}.{table}"

    def sql_name(self, table: str) -> str:
        """A table in SQL text: validated, then backtick-quoted."""
        return f"`{self.table_id(table)}`"

    @staticmethod
    def column(name: str) -> str:
        if not _COLUMN.match(name):
            raise PipelineError(f"not a BigQuery column name: {name!r}")
        return f"`{name}`"

    def view_sql(self, view: catalog.TlcView) -> str:
        """The view with the TLC's names, one DDL statement. BigQuery matches column names
        case-insensitively, so the course's ``PULocationID`` works as written."""
        cols = ", ".join(f"{self.column(c)} AS {self.column(n)}" for c, n in view.columns)
        return (
            f"CREATE OR REPLACE VIEW {self.sql_name(view.name)} AS SELECT {cols}"
            f" FROM {self.sql_name(view.table)}"
        )

    def _refresh_view(self, view: catalog.TlcView) -> None:
        """Make the view again after a load, as a query job of its own: BigQuery allows no DDL
        inside the swap's transaction. A view that cannot be made costs the view, with one
        warning line, never the load; a table of that name is left alone."""
        what = f"BigQuery {self.dataset}: view {view.name} (the TLC's names over {view.table})"
        try:
            try:
                found = self.client.get_table(self.table_id(view.name))
            except gexc.NotFound:
                found = None
            if found is not None and found.table_type != "VIEW":
                log.warning("%s not made: a %s has that name", what, found.table_type)
                return
            list(self._query(f"making the view {view.name}", self.view_sql(view)))
        except PipelineError as e:  # names the dataset, the view and the cause
            log.warning("%s; the load itself committed", e)
        except FAILED as e:
            log.warning("%s not refreshed, the load itself committed: %s", what, why(e))

    # -- setup ----------------------------------------------------------------------------------
    def _create(
        self, what: str, create: Callable[[], object], exists: Callable[[], object]
    ) -> None:
        """``create`` (which passes exists_ok), tolerating a worker on another host that made
        the same thing at the same moment. Real BigQuery answers the loser of that race with
        409, which exists_ok absorbs; the emulator answers with a failed commit (DuckLake's
        optimistic transactions; seen in the many-hosts test). Either way the thing exists
        afterwards, so a failed create is checked once with a read before it counts."""
        try:
            create()
        except FAILED as e:
            try:
                exists()
            except FAILED:
                raise PipelineError(f"BigQuery {self.dataset}: {what} failed: {why(e)}") from None
            log.info("BigQuery %s: %s: made by another worker meanwhile", self.dataset, what)

    def _ensure_dataset(self) -> None:
        ds = bigquery.Dataset(f"{self.client.project}.{self.dataset}")
        ds.location = self.location
        self._create(
            "creating the dataset",
            lambda: self.client.create_dataset(ds, exists_ok=True),
            lambda: self.client.get_dataset(ds.reference),
        )

    def trips_table_spec(self, color: str) -> bigquery.Table:
        table = bigquery.Table(
            self.table_id(catalog.trips_table(color)),
            schema=bq_schema(_fields(catalog.arrow_schema(color))),
        )
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.MONTH, field=catalog.PICKUP_COLUMN
        )
        table.clustering_fields = list(CLUSTER_BY)
        return table

    def _ensure_tables(self, color: str) -> None:
        self._ensure_dataset()
        spec = self.trips_table_spec(color)
        self._create(
            "creating the trips table",
            lambda: self.client.create_table(spec, exists_ok=True),
            lambda: self.client.get_table(spec.reference),
        )
        self._ensure_ledger()

    def _ensure_ledger(self) -> None:
        ledger = bigquery.Table(self.table_id(LEDGER_TABLE), schema=bq_schema(LEDGER))
        self._create(
            "creating the load ledger",
            lambda: self.client.create_table(ledger, exists_ok=True),
            lambda: self.client.get_table(ledger.reference),
        )

    def _query(self, what: str, text: str, params: Sequence[object] = ()) -> Iterator[object]:
        """A query with positional parameters (``?``), waited for. One that BigQuery cancelled
        for a concurrent transaction on the same table (the zones' ledger row and tlc-forget's
        deletes share the ledger with every host's month swaps) had no effect, and runs again,
        as run_job does for the swaps."""
        config = bigquery.QueryJobConfig(query_parameters=[_param(v) for v in params])
        label = f"BigQuery {self.dataset}: {what}"
        for tries in range(1, MAX_ATTEMPTS + 1):
            with one_line(label):
                try:
                    job = self.client.query(text, job_config=config, location=self.location)
                    return iter(job.result())
                except gexc.GoogleAPICallError as e:
                    if CONCURRENT_UPDATE not in str(e.message) or tries == MAX_ATTEMPTS:
                        raise
                    cause = why(e)
            wait_to_retry(label, tries, cause)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # -- the month ------------------------------------------------------------------------------
    def load_job_config(self, color: str) -> bigquery.LoadJobConfig:
        """The stage load: explicit schema, parquet, replace the stage."""
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            schema=bq_schema(_fields(catalog.arrow_schema(color))),
            autodetect=False,
        )

    def swap_sql(self, key: MonthKey, stage: str) -> str:
        """The multi-statement transaction that replaces the month and its ledger row. Its
        parameters, in order: the month's start and end, then the ledger row's
        (``LEDGER_COLUMNS``) after the five that say which row it replaces."""
        table = self.sql_name(catalog.trips_table(key.color))
        ledger = self.sql_name(LEDGER_TABLE)
        cols = ", ".join(self.column(n) for n in catalog.arrow_schema(key.color).names)
        pickup = self.column(catalog.PICKUP_COLUMN)
        return f"""
BEGIN TRANSACTION;
DELETE FROM {table} WHERE {pickup} >= ? AND {pickup} < ?;
INSERT INTO {table} ({cols}) SELECT {cols} FROM {self.sql_name(stage)};
DELETE FROM {ledger}
  WHERE kind = ? AND table_name = ? AND color = ? AND year = ? AND month = ?;
INSERT INTO {ledger} ({", ".join(LEDGER_COLUMNS)})
  VALUES ({", ".join("?" for _ in LEDGER_COLUMNS)});
COMMIT TRANSACTION;
""".strip()

    def swap_params(self, key: MonthKey, record: LoadRecord) -> list[object]:
        start, end = key.bounds()
        which = [record.kind, record.table_name, key.color, key.year, key.month]
        return [start, end, *which, *ledger_params(record)]

    def replace_month(
        self, report: QualityReport, files: Sequence[str], progress: CopyProgress | None = None
    ) -> LoadRecord:
        """Load ``files`` (the month's gs:// URIs) as described in the module docstring."""
        started = time.monotonic()
        key = MonthKey(report["color"], report["year"], report["month"])
        uris = list(files)
        if not all(u.startswith("gs://") for u in uris):
            raise PipelineError(f"BigQuery loads from gs:// URIs, not {uris}")
        expected = report["rows_out"]
        crc = source_crc(report)
        # Job ids are unique per project: the dataset is part of the id, or a dev and a prod
        # dataset in one project would resume each other's jobs.
        base = f"tlc_{self.dataset}_{key.color}_{key.yyyymm}_{crc}"
        stage = f"{STAGE_PREFIX}{key.color}_{key.yyyymm}_{crc}"  # per data version
        table = catalog.trips_table(key.color)
        what = f"BigQuery load of {key.label} into {self.dataset}"

        self._ensure_tables(key.color)
        self._sweep_stages()
        load = run_job(
            self.client,
            self.location,
            f"{what}: load job",
            f"{base}_load",
            lambda job_id: self.client.load_table_from_uri(
                uris,
                self.table_id(stage),
                job_id=job_id,
                job_config=self.load_job_config(key.color),
                location=self.location,
                retry=insert_retry(f"{what}: jobs.insert {job_id}"),
            ),
            still_useful=lambda job: self._exists(stage),
        )
        staged = self._count(stage)
        if staged != expected:
            self._drop(stage)
            raise PipelineError(
                f"{what}: the load job {load.job_id} staged {staged} rows, the clean month has "
                f"{expected}; nothing was replaced"
            )
        if progress:
            progress(staged, expected)

        def swap(job_id: str) -> Job:
            seconds = time.monotonic() - started
            record = LoadRecord.for_month(report, table, expected, seconds, load_id=job_id)
            config = bigquery.QueryJobConfig(
                query_parameters=[_param(v) for v in self.swap_params(key, record)]
            )
            job: Job = self.client.query(
                self.swap_sql(key, stage),
                job_config=config,
                job_id=job_id,
                location=self.location,
                retry=insert_retry(f"{what}: jobs.insert {job_id}"),
                job_retry=None,  # a failed job id cannot be reused; run_job moves to the next
            )
            return job

        swapped = run_job(
            self.client,
            self.location,
            f"{what}: swap transaction",
            f"{base}_swap",
            swap,
            still_useful=lambda job: (self.loaded(key) or _NONE).load_id == job.job_id,
        )
        self._drop(stage)
        record = self.loaded(key)
        if record is None or record.load_id != swapped.job_id:
            raise PipelineError(f"{what}: the swap {swapped.job_id} left no ledger row")
        self._refresh_view(catalog.tlc_view(key.color))
        log.info("%s: %d rows (jobs %s, %s)", what, expected, load.job_id, swapped.job_id)
        return record

    def _sweep_stages(self) -> None:
        """Drop the stages loads left behind more than STAGE_MAX_AGE ago. A worker killed
        between the swap's commit and the stage's drop leaves a whole month of billed storage
        that no later run visits (the month is complete); so does a month cleaned again after
        its swap failed (the next stage has another name). One listing per month load; a
        failure here is a warning, never the load's. A stage dropped under a load that is
        somehow still running costs that load a rerun of its load job, no data."""
        cutoff = dt.datetime.now(dt.UTC) - STAGE_MAX_AGE
        try:
            stale = [
                t.table_id
                for t in self.client.list_tables(f"{self.client.project}.{self.dataset}")
                if t.table_id.startswith(STAGE_PREFIX) and t.created and t.created < cutoff
            ]
            for name in stale:
                self.client.delete_table(self.table_id(name), not_found_ok=True)
                log.info(
                    "BigQuery %s: dropped %s, a stage left by an earlier load", self.dataset, name
                )
        except FAILED as e:
            log.warning(
                "BigQuery %s: old stages not swept (the next load tries again): %s",
                self.dataset,
                why(e),
            )

    def _exists(self, table: str) -> bool:
        with one_line(f"BigQuery {self.dataset}: checking for {table}"):
            try:
                self.client.get_table(self.table_id(table))
                return True
            except gexc.NotFound:
                return False

    def _drop(self, table: str) -> None:
        with one_line(f"BigQuery {self.dataset}: dropping {table}"):
            self.client.delete_table(self.table_id(table), not_found_ok=True)

    def _count(self, table: str) -> int:
        # COUNT(*), not Table.num_rows: the emulator's num_rows can be stale, and a COUNT(*) of
        # a whole table costs no bytes in BigQuery.
        rows = self._query("counting rows", f"SELECT COUNT(*) AS n FROM {self.sql_name(table)}")
        first = next(rows)
        assert isinstance(first, bigquery.Row)
        return int(first["n"])

    # -- the ledger -----------------------------------------------------------------------------
    def _records(self) -> list[LoadRecord]:
        """The whole ledger, read with tabledata.list, not a query: a completion check starts
        no job and bills nothing. It holds one row per month loaded, so this stays small."""
        with one_line(f"BigQuery {self.dataset}: reading the load ledger"):
            try:
                table = self.client.get_table(self.table_id(LEDGER_TABLE))
                if "kind" not in {f.name for f in table.schema}:
                    self._migrate_ledger()
                rows = self.client.list_rows(self.table_id(LEDGER_TABLE))
                return [LoadRecord.from_row(dict(r.items())) for r in rows]
            except gexc.NotFound:
                return []

    def _migrate_ledger(self) -> None:
        """The first ledger (before 0.1.0's contract) had one row per month with rows,
        source_crc, load_job_id and query_job_id, and the zones as the fake month
        ('taxi_zones', 0, 0). One statement rewrites it in the new shape."""
        zones = "color = 'taxi_zones'"
        mapping = {
            "kind": f"IF({zones}, 'zones', 'month')",
            "table_name": f"IF({zones}, color, CONCAT(color, '_trips'))",
            "color": f"IF({zones}, NULL, color)",
            "year": f"IF({zones}, NULL, year)",
            "month": f"IF({zones}, NULL, month)",
            "rows_in": "CAST(NULL AS INT64)",
            "rows_out": "rows",
            "rows_dropped": "'{}'",
            "source_sha256": "source_sha256",
            "clean_sha256": "clean_sha256",
            "code_version": "'before 0.1.0'",
            "loaded_at": "CAST(loaded_at AS DATETIME)",
            "seconds": "CAST(0 AS FLOAT64)",
            "load_id": "query_job_id",
        }
        select = ", ".join(f"{mapping[c]} AS {c}" for c in LEDGER_COLUMNS)
        ledger = self.sql_name(LEDGER_TABLE)
        rewrite = f"CREATE OR REPLACE TABLE {ledger} AS SELECT {select} FROM {ledger}"
        list(self._query("migrating the load ledger", rewrite))
        log.info("BigQuery %s: load ledger migrated to the 0.1.0 columns", self.dataset)

    def loaded(self, key: MonthKey) -> LoadRecord | None:
        return self.loaded_months().get(key)

    def loaded_months(self) -> dict[MonthKey, LoadRecord]:
        """Every month's ledger row, in one tabledata.list (no job)."""
        return latest([r for r in self._records() if r.kind == MONTH])

    def forget(self, key: MonthKey) -> bool:
        if self.loaded(key) is None:
            return False
        list(
            self._query(
                "forgetting a load",
                f"DELETE FROM {self.sql_name(LEDGER_TABLE)}"
                " WHERE kind = ? AND color = ? AND year = ? AND month = ?",
                [MONTH, key.color, key.year, key.month],
            )
        )
        return True

    # -- zones ----------------------------------------------------------------------------------
    def load_zones(self, table: pa.Table, sha256: str) -> LoadRecord:
        started = time.monotonic()
        self._ensure_dataset()
        self._ensure_ledger()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        buf.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=bq_schema(_fields(catalog.ZONES_SCHEMA)),
        )
        run_job(
            self.client,
            self.location,
            f"BigQuery load of {ZONES_TABLE}",
            f"tlc_zones_{sha256[:16]}_{hashlib.sha1(self.dataset.encode()).hexdigest()[:8]}",
            lambda job_id: self.client.load_table_from_file(
                buf,
                self.table_id(ZONES_TABLE),
                job_id=job_id,
                job_config=config,
                location=self.location,
                rewind=True,
            ),
            # The job writes the table itself (WRITE_TRUNCATE), and a done job's result may
            # be gone: the table dropped, the dataset made again, or other zones loaded since
            # (an id names the lookup's sha256, which can come back). Its ledger row would then
            # claim a table that is not there. Loading 265 rows again costs a second, so a done
            # job is never taken for this run's; one still running is waited for.
            still_useful=lambda job: False,
        )
        record = LoadRecord.for_zones(
            ZONES_TABLE, table.num_rows, sha256, time.monotonic() - started
        )
        ledger = self.sql_name(LEDGER_TABLE)
        marks = ", ".join("?" for _ in LEDGER_COLUMNS)
        list(
            self._query(
                "recording the zones load",
                f"BEGIN TRANSACTION; DELETE FROM {ledger} WHERE kind = ?;"
                f" INSERT INTO {ledger} ({', '.join(LEDGER_COLUMNS)}) VALUES ({marks});"
                " COMMIT TRANSACTION;",
                [ZONES, *ledger_params(record)],
            )
        )
        self._refresh_view(catalog.zones_tlc_view())
        return record

    def zones_loaded(self) -> LoadRecord | None:
        found = [r for r in self._records() if r.kind == ZONES]
        return max(found, key=lambda r: r.loaded_at) if found else None

    def forget_zones(self) -> bool:
        if self.zones_loaded() is None:
            return False
        list(
            self._query(
                "forgetting the zones load",
                f"DELETE FROM {self.sql_name(LEDGER_TABLE)} WHERE kind = ?",
                [ZONES],
            )
        )
        return True


_NONE = LoadRecord(MONTH, "", None, None, None, None, 0, {}, "", "", "", dt.datetime.min, 0.0)


def ledger_params(record: LoadRecord) -> list[bigquery.ScalarQueryParameter]:
    """The ledger row's values as parameters typed by their columns (a NULL year of the zones
    row must be an INT64 NULL: BigQuery does not coerce a typed NULL)."""
    return [
        bigquery.ScalarQueryParameter(None, _BQ_TYPES[t], v)
        for v, (_, t) in zip(record.values(), LEDGER, strict=True)
    ]


def _param(value: object) -> bigquery.ScalarQueryParameter:
    """A positional query parameter with BigQuery's type for the value."""
    if isinstance(value, bigquery.ScalarQueryParameter):
        return value
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(None, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(None, "INT64", value)
    if isinstance(value, float):
        return bigquery.ScalarQueryParameter(None, "FLOAT64", value)
    if isinstance(value, dt.datetime):
        return bigquery.ScalarQueryParameter(None, "DATETIME", value.replace(tzinfo=None))
    return bigquery.ScalarQueryParameter(None, "STRING", str(value))


def source_crc(report: QualityReport) -> str:
    """A short, stable name for the month's data: a hash of its files' crc32c (or sha256)."""
    parts = [f.get("crc32c") or f["sha256"] for f in report["files"]]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
