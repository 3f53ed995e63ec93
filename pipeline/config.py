"""Configuration sections, read by Luigi from luigi.toml (and LUIGI_CONFIG_PATH on top).

Class names are the TOML section names. Keys use underscores: luigi's TOML parser does not
turn '-' into '_'.
"""

from __future__ import annotations

from pathlib import Path

import luigi

from pipeline import catalog
from pipeline.download import RetryPolicy
from pipeline.lake import Lake
from pipeline.sinks import Sink
from pipeline.sinks.duckdb import DuckDBWarehouse
from pipeline.sinks.postgres import PgConn, PostgresWarehouse


class source(luigi.Config):
    format = luigi.ChoiceParameter(
        choices=catalog.SOURCE_FORMATS,
        default="parquet",
        description="parquet (the TLC CDN) or csv.gz (the course's mirror)",
    )
    parquet_url = luigi.Parameter(default=catalog.DEFAULT_PARQUET_URL)
    csv_url = luigi.Parameter(default=catalog.DEFAULT_CSV_URL)
    zones_url = luigi.Parameter(default=catalog.DEFAULT_ZONES_URL)
    attempts = luigi.IntParameter(
        default=5, description="tries per download, transient faults only"
    )
    backoff = luigi.FloatParameter(default=1.0, description="first retry delay in s, doubling")
    connect_timeout = luigi.FloatParameter(default=10.0)
    read_timeout = luigi.FloatParameter(default=60.0)

    def url(self, color: str, year: int, month: int) -> str:
        template = self.parquet_url if self.format == "parquet" else self.csv_url
        return catalog.source_url(template, color, year, month)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.attempts, self.backoff, self.connect_timeout, self.read_timeout)


class lake(luigi.Config):
    root = luigi.Parameter(default="data/lake", description="local folder of the data lake")

    def get(self) -> Lake:
        return Lake(Path(self.root))


class duckdb(luigi.Config):
    path = luigi.Parameter(default="data/warehouse.duckdb", description="DuckDB warehouse file")
    lock_timeout = luigi.FloatParameter(
        default=60.0, description="seconds to wait while another process holds the file"
    )

    def get(self) -> DuckDBWarehouse:
        return DuckDBWarehouse(Path(self.path), self.lock_timeout)


class postgres(luigi.Config):
    """libpq's PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGPASSFILE win over these."""

    host = luigi.Parameter(default="localhost")
    port = luigi.IntParameter(default=5432)
    database = luigi.Parameter(default="ny_taxi")
    user = luigi.Parameter(default="postgres")
    # Allowed, discouraged: use PGPASSWORD or a ~/.pgpass file. Private, so Luigi never shows it.
    password = luigi.Parameter(
        default="",
        significant=False,
        visibility=luigi.parameter.ParameterVisibility.PRIVATE,
    )
    schema = luigi.Parameter(default="public", description="schema of the trips and zone tables")
    lock_timeout = luigi.FloatParameter(
        default=60.0, description="seconds the month swap waits for readers' locks"
    )
    connect_timeout = luigi.IntParameter(default=10)
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


SINKS = ("duckdb", "postgres")


def sink(name: str) -> Sink:
    """The configured warehouse called ``name``."""
    sections: dict[str, type[duckdb] | type[postgres]] = {"duckdb": duckdb, "postgres": postgres}
    return sections[name]().get()
