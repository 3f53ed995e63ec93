"""Configuration sections, read by Luigi from luigi.toml (and LUIGI_CONFIG_PATH on top).

Class names are the TOML section names. Keys use underscores: luigi's TOML parser does not
turn '-' into '_'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import luigi

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.extract.download import RetryPolicy
from pipeline.lake.lake import Lake, open_lake
from pipeline.sinks.base import Sink
from pipeline.sinks.duckdb import DEFAULT_MEMORY_LIMIT, DuckDBWarehouse
from pipeline.sinks.postgres import PgConn, PostgresWarehouse

if TYPE_CHECKING:
    from pipeline.lake.gcs_copy import GcsCopy
    from pipeline.sinks.bigquery import BigQueryWarehouse


class TomlListParameter(luigi.ListParameter[tuple[str, ...]]):
    """A ListParameter that also takes a TOML array: luigi's own parses JSON text only."""

    def parse(self, x: object) -> tuple[str, ...]:
        if isinstance(x, list | tuple):
            return tuple(str(v) for v in x)
        return tuple(str(v) for v in super().parse(x))


class pipeline(luigi.Config):
    sinks = TomlListParameter(
        default=("duckdb",), description="warehouses IngestMonth loads: duckdb, postgres, bigquery"
    )
    webhook_url = luigi.Parameter(
        default="",
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.PRIVATE,
        description="POST a Slack-style JSON message here when a task fails (empty: off)",
    )

    def sink_names(self) -> tuple[str, ...]:
        unknown = [s for s in self.sinks if s not in SINKS]
        if unknown:
            raise BadParameter(f"[pipeline] sinks: unknown {unknown}; choose from {SINKS}")
        return tuple(self.sinks)


class source(luigi.Config):
    format = luigi.ChoiceParameter(
        choices=catalog.SOURCE_FORMATS,
        default="parquet",
        description="parquet (the TLC CDN) or csv.gz (the course's mirror)",
    )
    parquet_url = luigi.Parameter(
        default=catalog.DEFAULT_PARQUET_URL, description="URL template of the TLC's parquet"
    )
    csv_url = luigi.Parameter(
        default=catalog.DEFAULT_CSV_URL, description="URL template of the course's csv.gz"
    )
    zones_url = luigi.Parameter(
        default=catalog.DEFAULT_ZONES_URL, description="URL of the taxi zone lookup CSV"
    )
    attempts = luigi.IntParameter(
        default=5, description="tries per download, transient faults only"
    )
    backoff = luigi.FloatParameter(default=1.0, description="first retry delay in s, doubling")
    connect_timeout = luigi.FloatParameter(default=10.0, description="seconds to connect")
    read_timeout = luigi.FloatParameter(
        default=60.0, description="seconds without a byte before an attempt times out"
    )
    unreachable_for = luigi.FloatParameter(
        default=10.0, description="seconds to keep retrying a host that cannot be reached"
    )
    min_rate = luigi.FloatParameter(
        default=10_000.0,
        description="bytes/s over each read_timeout below which an attempt counts as failed",
    )

    def url(self, key: MonthKey) -> str:
        template = self.parquet_url if self.format == "parquet" else self.csv_url
        return catalog.source_url(template, key)

    def policy(self) -> RetryPolicy:
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise BadParameter(f"[source] {name} = {getattr(self, name):g}: must be above 0")
        if self.attempts < 1 or min(self.backoff, self.min_rate, self.unreachable_for) < 0:
            raise BadParameter(
                f"[source] attempts = {self.attempts}, backoff = {self.backoff:g}, min_rate = "
                f"{self.min_rate:g}, unreachable_for = {self.unreachable_for:g}: attempts at "
                "least 1, the others not below 0"
            )
        return RetryPolicy(
            self.attempts,
            self.backoff,
            self.connect_timeout,
            self.read_timeout,
            self.unreachable_for,
            self.min_rate,
        )


# Unpublished data of a writer on another host younger than this is never swept, whatever
# [lake] orphan_age says: that writer may still be uploading.
MIN_ORPHAN_AGE = 60.0


class lake(luigi.Config):
    root = luigi.Parameter(
        default="data/lake", description="the data lake: a local folder or gs://bucket/prefix"
    )
    orphan_age = luigi.FloatParameter(
        default=3600.0,
        description="seconds after which unpublished data of a writer on another host is swept",
    )

    def get(self) -> Lake:
        if self.orphan_age < MIN_ORPHAN_AGE:
            raise BadParameter(
                f"[lake] orphan_age = {self.orphan_age:g}: at least {MIN_ORPHAN_AGE:g} s (a "
                "writer on another host that is still uploading would have its data swept)"
            )
        # A bucket's billing project is [gcs] project's (empty: from the credentials).
        return open_lake(self.root, gcs().project or None, self.orphan_age)

    def on_gcs(self) -> bool:
        return self.root.startswith("gs://")


class duckdb(luigi.Config):
    path = luigi.Parameter(default="data/warehouse.duckdb", description="DuckDB warehouse file")
    lock_timeout = luigi.FloatParameter(
        default=60.0, description="seconds to wait while another process holds the file"
    )
    memory_limit = luigi.Parameter(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's buffer pool while loading, e.g. '160MB' (empty: 80 % of RAM)",
    )

    def get(self) -> DuckDBWarehouse:
        return DuckDBWarehouse(Path(self.path), self.lock_timeout, self.memory_limit)


class postgres(luigi.Config):
    """libpq's PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGPASSFILE win over these."""

    host = luigi.Parameter(default="localhost", description="server host (PGHOST wins)")
    port = luigi.IntParameter(default=5432, description="server port (PGPORT wins)")
    database = luigi.Parameter(default="ny_taxi", description="database (PGDATABASE wins)")
    user = luigi.Parameter(default="postgres", description="user (PGUSER wins)")
    # Allowed, discouraged: use PGPASSWORD or a ~/.pgpass file. Private, so Luigi never shows it.
    password = luigi.Parameter(
        default="",
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.PRIVATE,
        description="discouraged: use PGPASSWORD or ~/.pgpass",
    )
    schema = luigi.Parameter(default="public", description="schema of the trips and zone tables")
    lock_timeout = luigi.FloatParameter(
        default=60.0, description="seconds the month swap waits for readers' locks"
    )
    connect_timeout = luigi.IntParameter(default=10, description="seconds to connect")
    copy_streams = luigi.IntParameter(
        default=2, description="parallel binary COPY streams per month load"
    )

    def get(self) -> PostgresWarehouse:
        pg = PgConn.resolve(
            self.host,
            self.port,
            self.database,
            self.user,
            self.password or None,
            self.connect_timeout,
        )
        return PostgresWarehouse(pg, self.schema, self.lock_timeout, self.copy_streams)


class gcs(luigi.Config):
    """UploadGCS's copy of a local lake's clean months, for BigQuery (unused when [lake] root
    is itself on GCS). Credentials: Application Default Credentials,
    GOOGLE_APPLICATION_CREDENTIALS, or STORAGE_EMULATOR_HOST for an emulator; never here."""

    bucket = luigi.Parameter(default="", description="bucket name, without gs://")
    prefix = luigi.Parameter(default="tlc", description="folder inside the bucket")
    project = luigi.Parameter(default="", description="billing project; empty: from ADC")

    def get(self) -> GcsCopy:
        from pipeline.lake.gcs_copy import GcsCopy  # the google clients load only where used

        return GcsCopy(self.bucket, self.prefix, self.project or None)


class bigquery(luigi.Config):
    project = luigi.Parameter(default="", description="project of the dataset; empty: from ADC")
    dataset = luigi.Parameter(default="tlc", description="dataset, created on first use")
    location = luigi.Parameter(default="US", description="dataset and job location")
    api_endpoint = luigi.Parameter(
        default="", description="emulators only: http://host:port, with anonymous credentials"
    )

    def get(self) -> BigQueryWarehouse:
        from google.auth.exceptions import DefaultCredentialsError

        from pipeline.sinks.bigquery import BigQueryWarehouse, bigquery_client

        try:
            client = bigquery_client(self.project, self.location, self.api_endpoint)
        except DefaultCredentialsError as e:
            raise PipelineError(
                f"BigQuery: no Google credentials ({str(e).split('. ')[0]}): run "
                "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
        return BigQueryWarehouse(client, self.dataset, self.location)


# The one registry of sinks: name -> its configuration section. The load tasks
# (orchestration/tasks.py) name theirs with the same keys, and a test checks both agree.
SINK_SECTIONS: dict[str, type[duckdb] | type[postgres] | type[bigquery]] = {
    "duckdb": duckdb,
    "postgres": postgres,
    "bigquery": bigquery,
}
SINKS = tuple(SINK_SECTIONS)


def sink(name: str) -> Sink:
    """The configured warehouse called ``name``."""
    return SINK_SECTIONS[name]().get()
