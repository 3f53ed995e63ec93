"""The course's ingest command, on the pipeline's own download, clean and load code.

    python -m pipeline.ingest --user postgres --password "$PGPASSWORD" --host localhost \\
        --port 5432 --db ny_taxi --table_name yellow_taxi_trips \\
        --url https://d37ci6vzurychx.cloudfront.net/trip-data/yellow_tripdata_2021-01.parquet

The arguments are those of the course's ``pq_process_simple.py``. The URL's file name gives the
colour, month and format (TLC parquet or the course's csv.gz). The file goes through the same
functions as DownloadMonth, CleanParquet and LoadPostgres, into the lake of luigi.toml's
``[lake] root``, and the month replaces itself atomically in ``--table_name``. The table may be
``schema.table``; otherwise ``[postgres] schema`` is used. Leave ``--password`` out and set
PGPASSWORD (or use ~/.pgpass): a password on a command line is visible to every user of the
machine in ``ps``. Any argument left out falls back to the PG* variables, then luigi.toml.

Exit codes: 0 loaded; 1 failed; 3 the month is not published (404/403).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import pipeline  # noqa: F401  (selects the TOML config parser)
from pipeline.domain.errors import BadParameter, MonthNotPublished, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local as local_lake
from pipeline.orchestration import config, loading
from pipeline.sinks.postgres import PgConn, PostgresWarehouse

log = logging.getLogger("pipeline.ingest")

URL_FILE = re.compile(
    r"(?P<color>yellow|green|fhvhv|fhv)_tripdata_(?P<year>\d{4})-(?P<month>\d{2})"
    r"\.(?P<fmt>parquet|csv\.gz)$"
)
EXIT_FAILED = 1
EXIT_NOT_PUBLISHED = 3


def parse_url(url: str) -> tuple[MonthKey, str]:
    """The month and the format from a TLC or course URL's file name."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    m = URL_FILE.search(name)
    if not m:
        raise PipelineError(
            f"cannot tell colour and month from the URL's file name {name!r}: expected "
            "{color}_tripdata_YYYY-MM.parquet or .csv.gz"
        )
    return MonthKey(m["color"], int(m["year"]), int(m["month"])), m["fmt"]


def ingest(url: str, warehouse: PostgresWarehouse, lake_root: Path | None = None) -> int:
    """Download, clean and load one month from ``url``; return the rows loaded."""
    key, fmt = parse_url(url)
    the_lake = local_lake(lake_root) if lake_root else config.lake().get()
    raw_name = the_lake.raw_name(key, fmt)
    if the_lake.raw(raw_name) is None:
        loading.download_file(url, the_lake, raw_name, fmt, config.source().policy())
    if the_lake.quality(key) is None:
        loading.clean_month(the_lake, key, fmt)
    return loading.load_month(the_lake, key, warehouse, "postgres").rows_out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.ingest",
        description="Ingest one TLC month from a URL into a PostgreSQL table.",
    )
    p.add_argument("--user", help="PostgreSQL user (default: PGUSER, then luigi.toml)")
    p.add_argument("--password", help="discouraged: prefer PGPASSWORD or ~/.pgpass")
    p.add_argument("--host", help="default: PGHOST, then luigi.toml")
    p.add_argument("--port", type=int, help="default: PGPORT, then luigi.toml")
    p.add_argument("--db", help="database (default: PGDATABASE, then luigi.toml)")
    p.add_argument("--table_name", required=True, help="table, or schema.table")
    p.add_argument("--url", required=True, help="a TLC month: .../{color}_tripdata_YYYY-MM.*")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    cfg = config.postgres()
    # Explicit arguments first, then libpq's variables, then luigi.toml.
    env = PgConn.resolve(cfg.host, cfg.port, cfg.database, cfg.user, cfg.password or None)
    pg = PgConn(
        host=args.host or env.host,
        port=args.port or env.port,
        database=args.db or env.database,
        user=args.user or env.user,
        password=args.password or env.password,
        connect_timeout=cfg.connect_timeout,
    )
    schema, _, table = args.table_name.rpartition(".")
    try:
        warehouse = PostgresWarehouse(
            pg, schema or cfg.schema, cfg.lock_timeout, cfg.copy_streams, table=table
        )
    except BadParameter as e:
        p.error(f"--table_name: {e}")
    try:
        rows = ingest(args.url, warehouse)
    except MonthNotPublished as e:
        log.error("%s", pg.scrub(str(e)))
        return EXIT_NOT_PUBLISHED
    except PipelineError as e:
        log.error("%s", pg.scrub(str(e)))
        return EXIT_FAILED
    log.info("loaded %s rows into %s.%s on %s", f"{rows:,}", warehouse.schema, table, pg.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
