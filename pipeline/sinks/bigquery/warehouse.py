"""BigQuery sink: ``{dataset}.{color}_trips``, MONTH-partitioned on ``pickup_datetime``,
clustered by ``pu_location_id``, loaded from the month's objects on GCS.

How a month is replaced, and why:

1. A load job copies the month's ``gs://`` parquet into ``_stage_{color}_{YYYYMM}_{crc}`` with
   WRITE_TRUNCATE and the explicit schema (never autodetect: the schema comes from
   ``pipeline.catalog``, like every other sink's). Its row count is checked against the clean
   month's quality report.
2. One multi-statement transaction deletes the month from the table, inserts the stage, and
   replaces the month's row in ``_pipeline_loads``. Readers see the old month or the new one;
   the marker and the rows commit together.
3. The stage is dropped.

Jobs have deterministic ids, made of the colour, the month, a hash of the month's crc32c
values, and an attempt number. A rerun that finds its job id taken (409 Conflict) resumes that
job instead of loading twice, as dlt does. A job that failed for a transient reason
(backendError, rateLimitExceeded, internalError) is retried under the next attempt number; any
other failure ends the load with the job's own error message. A job id that an earlier run's
failed job holds is passed over, so a month that failed once can be loaded again.

luigi.contrib.bigquery is not used: its BigQueryTarget only checks that a table exists, so after
one month every month of an appended table would look complete.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import bigquery

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.sinks.base import clean_sha256
from pipeline.util.gcp_retry import logged, why

log = logging.getLogger(__name__)

MARKER_TABLE = "_pipeline_loads"
ZONES_TABLE = "taxi_zones"
CLUSTER_BY = ("pu_location_id",)
TRANSIENT_REASONS = frozenset({"backendError", "rateLimitExceeded", "internalError"})
MAX_ATTEMPTS = 4  # jobs run per load and per swap, in one run
RETRY_WAIT = 2.0  # seconds before the 2nd attempt; doubles, at most 30 s
MAX_JOB_IDS = 1000  # ids tried past the ones earlier runs' failed jobs hold

# The TLC's times are naive New York local times: DATETIME, not TIMESTAMP (which is an instant
# in UTC and would make every reader think about zones the data does not have).
_BQ_TYPES = {
    pa.timestamp("us"): "DATETIME",
    pa.int32(): "INT64",
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.string(): "STRING",
}

# BigQuery's own naming rules. The client offers no identifier quoting, so names are
# validated against these and then backtick-quoted.
_PROJECT = re.compile(r"^[a-z][a-z0-9.:-]{4,61}[a-z0-9]$|^[a-z0-9-]{1,63}$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def bq_schema(schema: pa.Schema) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(f.name, _BQ_TYPES[f.type], mode="NULLABLE") for f in schema]


def trips_table(color: str) -> str:
    if color not in catalog.COLORS:
        raise ValueError(f"unknown colour {color!r}")
    return f"{color}_trips"


@functools.cache
def bigquery_client(project: str, location: str, api_endpoint: str = "") -> bigquery.Client:
    """One client per process. ``api_endpoint`` is for emulators only (anonymous access)."""
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

    # -- names ------------------------------------------------------------------------------
    def table_id(self, table: str) -> str:
        if not _TABLE.match(table):
            raise PipelineError(f"not a BigQuery table name: {table!r}")
        return f"{self.client.project}.{self.dataset}.{table}"

    def sql_name(self, table: str) -> str:
        return f"`{self.table_id(table)}`"

    # -- setup ------------------------------------------------------------------------------
    def _ensure_dataset(self) -> None:
        ds = bigquery.Dataset(f"{self.client.project}.{self.dataset}")
        ds.location = self.location
        self._call("creating the dataset", self.client.create_dataset, ds, exists_ok=True)

    def trips_table_spec(self, color: str) -> bigquery.Table:
        table = bigquery.Table(
            self.table_id(trips_table(color)), schema=bq_schema(catalog.arrow_schema(color))
        )
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.MONTH, field=catalog.PICKUP_COLUMN
        )
        table.clustering_fields = list(CLUSTER_BY)
        return table

    def _ensure_tables(self, color: str) -> None:
        self._ensure_dataset()
        self._call(
            "creating the trips table",
            self.client.create_table,
            self.trips_table_spec(color),
            exists_ok=True,
        )
        self._ensure_marker()

    def _ensure_marker(self) -> None:
        marker = bigquery.Table(
            self.table_id(MARKER_TABLE),
            schema=[
                bigquery.SchemaField("color", "STRING"),
                bigquery.SchemaField("year", "INT64"),
                bigquery.SchemaField("month", "INT64"),
                bigquery.SchemaField("rows", "INT64"),
                bigquery.SchemaField("source_sha256", "STRING"),
                bigquery.SchemaField("clean_sha256", "STRING"),
                bigquery.SchemaField("source_crc", "STRING"),
                bigquery.SchemaField("load_job_id", "STRING"),
                bigquery.SchemaField("query_job_id", "STRING"),
                bigquery.SchemaField("loaded_at", "TIMESTAMP"),
            ],
        )
        self._call("creating the marker table", self.client.create_table, marker, exists_ok=True)

    # -- the month --------------------------------------------------------------------------
    def load_job_config(self, color: str) -> bigquery.LoadJobConfig:
        """The stage load: explicit schema, parquet, replace the stage."""
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            schema=bq_schema(catalog.arrow_schema(color)),
            autodetect=False,
        )

    def swap_sql(
        self, color: str, year: int, month: int, stage: str, marker: dict[str, Any]
    ) -> str:
        """The multi-statement transaction that replaces the month and its marker."""
        table = self.sql_name(trips_table(color))
        start, end = catalog.month_bounds(year, month)
        cols = ", ".join(f"`{n}`" for n in catalog.arrow_schema(color).names)
        values = ", ".join(_literal(marker[k]) for k in _MARKER_COLUMNS)
        return f"""
BEGIN TRANSACTION;
DELETE FROM {table}
  WHERE {catalog.PICKUP_COLUMN} >= DATETIME '{start:%Y-%m-%d %H:%M:%S}'
    AND {catalog.PICKUP_COLUMN} < DATETIME '{end:%Y-%m-%d %H:%M:%S}';
INSERT INTO {table} ({cols}) SELECT {cols} FROM {self.sql_name(stage)};
DELETE FROM {self.sql_name(MARKER_TABLE)}
  WHERE color = {_literal(color)} AND year = {year} AND month = {month};
INSERT INTO {self.sql_name(MARKER_TABLE)} ({", ".join(_MARKER_COLUMNS)}) VALUES ({values});
COMMIT TRANSACTION;
""".strip()

    def replace_month(
        self,
        color: str,
        year: int,
        month: int,
        files: Sequence[Path | str],
        quality: dict[str, Any],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Load ``files`` (the month's gs:// URIs) as described in the module docstring."""
        uris = [str(f) for f in files]
        if not all(u.startswith("gs://") for u in uris):
            raise PipelineError(f"BigQuery loads from gs:// URIs, not {uris}")
        expected = quality["rows_out"]
        ym = f"{year:04d}{month:02d}"
        crc = source_crc(quality)
        # Job ids are unique per project: the dataset is part of the id, or a dev and a prod
        # dataset in one project would resume each other's jobs.
        base = f"tlc_{self.dataset}_{color}_{ym}_{crc}"
        stage = f"_stage_{color}_{ym}_{crc}"  # per data version: never reused after a drop
        what = f"BigQuery load of {color} {year:04d}-{month:02d} into {self.dataset}"

        self._ensure_tables(color)
        load = self._run_job(
            f"{what}: load job",
            f"{base}_load",
            lambda job_id: self.client.load_table_from_uri(
                uris,
                self.table_id(stage),
                job_id=job_id,
                job_config=self.load_job_config(color),
                location=self.location,
                retry=_retry(f"{what}: jobs.insert {job_id}"),
            ),
            still_useful=lambda job: self._exists(stage),
        )
        staged = self._count(stage)
        if staged != expected:
            self.client.delete_table(self.table_id(stage), not_found_ok=True)
            raise PipelineError(
                f"{what}: the load job {load.job_id} staged {staged} rows, the clean month has "
                f"{expected}; nothing was replaced"
            )
        if progress:
            progress(staged, expected)
        manifest = quality.get("source_manifest") or {}
        marker = {
            "color": color,
            "year": year,
            "month": month,
            "rows": expected,
            "source_sha256": manifest.get("sha256") or "",
            "clean_sha256": clean_sha256(quality),
            "source_crc": crc,
            "load_job_id": load.job_id,
            "query_job_id": f"{base}_swap",
            "loaded_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
        }
        swap = self._run_job(
            f"{what}: swap transaction",
            f"{base}_swap",
            lambda job_id: self.client.query(
                self.swap_sql(color, year, month, stage, {**marker, "query_job_id": job_id}),
                job_id=job_id,
                location=self.location,
                retry=_retry(f"{what}: jobs.insert {job_id}"),
                job_retry=None,  # a failed job id cannot be reused; _run_job moves to the next
            ),
            still_useful=lambda job: (
                (self.loaded(color, year, month) or {}).get("query_job_id") == job.job_id
            ),
        )
        self.client.delete_table(self.table_id(stage), not_found_ok=True)
        log.info("%s: %d rows (jobs %s, %s)", what, expected, load.job_id, swap.job_id)
        return expected

    def _exists(self, table: str) -> bool:
        try:
            self.client.get_table(self.table_id(table))
            return True
        except gexc.NotFound:
            return False

    def _count(self, table: str) -> int:
        # COUNT(*), not Table.num_rows: the emulator's num_rows can be stale, and a COUNT(*) of
        # a whole table costs no bytes in BigQuery.
        rows = self.client.query(
            f"SELECT COUNT(*) AS n FROM {self.sql_name(table)}", location=self.location
        ).result()
        return next(iter(rows))["n"]

    def _run_job(
        self,
        what: str,
        base: str,
        submit: Callable[[str], Any],
        still_useful: Callable[[Any], bool] = lambda job: True,
    ) -> Any:
        """Run a job under a deterministic id; resume it on 409; retry transient failures
        under the next attempt number.

        A 409 means the id is taken: by an earlier run, or by this one when the answer to
        jobs.insert was lost and the client sent it again. A job still running, or done and
        still of use, is resumed. One that failed, or whose result is gone (``still_useful``
        says so: its stage was dropped after an earlier swap, say), is passed over: BigQuery
        never reuses a job id, so the next number runs the job afresh. Passed-over ids are
        not attempts of this run."""
        tries, last = 0, ""
        for n in range(1, MAX_JOB_IDS + 1):
            if tries == MAX_ATTEMPTS:
                break
            job_id = f"{base}_{n}"
            counted = False
            try:
                job = submit(job_id)
            except gexc.Conflict:
                job = self.client.get_job(job_id, location=self.location)
                if job.state == "DONE" and job.error_result:
                    # Resuming a failed job would fail the month for good (every rerun finds
                    # the same id taken, by the same failure), even after an outage or a
                    # missing permission is over. Should the job be this run's own (its
                    # jobs.insert answer lost), the next id runs it once more, and fails the
                    # same way if the failure is permanent.
                    log.info(
                        "%s: job %s failed before (%s); the next id runs it again",
                        what,
                        job_id,
                        job.error_result.get("reason"),
                    )
                    continue
                if job.state == "DONE" and not still_useful(job):
                    log.info("%s: job %s is done but its result is gone; rerunning", what, job_id)
                    continue
                log.info("%s: resuming existing job %s (%s)", what, job_id, job.state)
            except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as e:
                # The client's own retries got no answer, so the job may or may not exist: the
                # same id, after the wait, is resumed if it does, or the next id runs it.
                tries, counted, last = tries + 1, True, why(e)
                if tries == MAX_ATTEMPTS:
                    break
                self._wait(what, tries, last)
                try:
                    job = self.client.get_job(job_id, location=self.location)
                except gexc.NotFound:
                    continue
            except gexc.GoogleAPICallError as e:
                raise PipelineError(f"{what}: {e.message}") from None
            if not counted:
                tries += 1
            try:
                job.result()
                return job
            except gexc.GoogleAPICallError as e:
                reason = (job.error_result or {}).get("reason", "")
                message = (job.error_result or {}).get("message") or e.message
                if reason in TRANSIENT_REASONS:
                    # The job ended DONE with errorResult backendError, rateLimitExceeded or
                    # internalError. BigQuery applies a load job or a transaction only when it
                    # succeeds, and both are repeatable here anyway (a WRITE_TRUNCATE stage;
                    # DELETE the month, then INSERT): the next id runs the job again.
                    last = f"{reason}: {message}"
                    if tries < MAX_ATTEMPTS:
                        self._wait(what, tries, last)
                    continue
                detail = "; ".join(
                    err.get("message", "") for err in (job.errors or []) if err.get("message")
                )
                raise PipelineError(
                    f"{what}: job {job_id} failed: {message}"
                    + (f" ({detail})" if detail and detail != message else "")
                ) from None
        if tries < MAX_ATTEMPTS:
            raise PipelineError(f"{what}: job ids {base}_1 to _{MAX_JOB_IDS} are all taken")
        raise PipelineError(f"{what}: gave up after {MAX_ATTEMPTS} attempts ({last})")

    @staticmethod
    def _wait(what: str, tries: int, cause: str) -> None:
        wait = min(RETRY_WAIT * 2 ** (tries - 1), 30.0)
        log.warning(
            "%s: attempt %d/%d failed, retrying in %.1f s: %s",
            what,
            tries,
            MAX_ATTEMPTS,
            wait,
            cause,
        )
        time.sleep(wait)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gexc.GoogleAPICallError as e:
            raise PipelineError(f"BigQuery {self.dataset}: {what} failed: {e.message}") from None

    # -- markers ----------------------------------------------------------------------------
    def loaded(self, color: str, year: int, month: int) -> dict[str, Any] | None:
        """The month's marker row. Read with tabledata.list, not a query, so that checking a
        complete month starts no job (and bills nothing); the table has one row per month."""
        try:
            rows = self.client.list_rows(self.table_id(MARKER_TABLE))
            found = [
                dict(r.items())
                for r in rows
                if r["color"] == color and r["year"] == year and r["month"] == month
            ]
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as e:
            raise PipelineError(f"BigQuery {self.dataset}: reading load markers: {e}") from None
        return max(found, key=lambda r: r["loaded_at"]) if found else None

    def loaded_months(self) -> dict[tuple[str, int, int], dict[str, Any]]:
        """Every month marker, in one tabledata.list (no job)."""
        out: dict[tuple[str, int, int], dict[str, Any]] = {}
        try:
            rows = sorted(
                (dict(r.items()) for r in self.client.list_rows(self.table_id(MARKER_TABLE))),
                key=lambda r: r["loaded_at"],
            )
        except gexc.NotFound:
            return out
        for r in rows:
            if r["color"] in catalog.COLORS:
                out[(r["color"], r["year"], r["month"])] = r
        return out

    def forget(self, color: str, year: int, month: int) -> bool:
        if self.loaded(color, year, month) is None:
            return False
        self.client.query(
            f"DELETE FROM {self.sql_name(MARKER_TABLE)} WHERE color = {_literal(color)}"
            f" AND year = {int(year)} AND month = {int(month)}",
            location=self.location,
        ).result()
        return True

    # -- zones ------------------------------------------------------------------------------
    def replace_zones(self, table: pa.Table, sha256: str) -> int:
        self._ensure_dataset()
        self._ensure_marker()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        buf.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=bq_schema(catalog.ZONES_SCHEMA),
        )
        self._run_job(
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
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        marker = {
            "color": ZONES_TABLE,
            "year": 0,
            "month": 0,
            "rows": table.num_rows,
            "source_sha256": sha256,
            "clean_sha256": sha256,
            "source_crc": "",
            "load_job_id": "",
            "query_job_id": "",
            "loaded_at": now,
        }
        values = ", ".join(_literal(marker[k]) for k in _MARKER_COLUMNS)
        self.client.query(
            f"BEGIN TRANSACTION;"
            f" DELETE FROM {self.sql_name(MARKER_TABLE)} WHERE color = {_literal(ZONES_TABLE)};"
            f" INSERT INTO {self.sql_name(MARKER_TABLE)} ({', '.join(_MARKER_COLUMNS)})"
            f" VALUES ({values}); COMMIT TRANSACTION;",
            location=self.location,
        ).result()
        return table.num_rows


_MARKER_COLUMNS = (
    "color",
    "year",
    "month",
    "rows",
    "source_sha256",
    "clean_sha256",
    "source_crc",
    "load_job_id",
    "query_job_id",
    "loaded_at",
)


def _retry(what: str) -> Retry:
    """The BigQuery client's own retry of jobs.insert, logged (pipeline.gcp_retry). A retried
    insert of a job that was made after all gets 409, which _run_job resumes."""
    return logged(bigquery.DEFAULT_RETRY, what, log)


def source_crc(quality: dict[str, Any]) -> str:
    """A short, stable name for the month's data: a hash of its files' crc32c (or sha256)."""
    parts = [f.get("crc32c") or f["sha256"] for f in quality["files"]]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _literal(value: Any) -> str:
    """A BigQuery literal for values this module builds itself (ints, hex digests, ids,
    colours from the catalog, times)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}+00'"
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_.,:+-]*", text):
        raise ValueError(f"refusing to inline {text!r} into SQL")
    return f"'{text}'"
