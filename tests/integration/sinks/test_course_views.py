"""The course's SQL on our warehouses: the views with the TLC's names (``green_tripdata`` over
``green_trips``, ``taxi_zone_lookup`` over ``taxi_zones``; catalog.tlc_view) in DuckDB and
PostgreSQL.

Real green months (the course's own csv.gz among them) and the real zone lookup go in through
the sinks, as the load tasks put them; then the course's queries, written the course's way
against the views, must give exactly what the same queries give on the canonical tables.
Then the views' upkeep: made again by every load, an older view of another shape replaced, a
table of the user's with a view's name left alone (the load still succeeds), the zones
reloaded under a view of the user's.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pyarrow.parquet as pq
import pytest
from psycopg2 import sql

from pipeline.domain import catalog
from pipeline.domain.months import MonthKey
from pipeline.extract.zones import read_zones
from pipeline.lake.local import sha256_file
from pipeline.sinks.duckdb import DuckDBWarehouse
from pipeline.sinks.postgres import PgConn, PostgresWarehouse, ddl
from tests.support.fixtures import ZONES_FILE, require_tlc_data
from tests.support.lakes import Cleaned, clean_into

# The real green months: two of the TLC's parquet files and the course's own csv.gz.
MONTHS = {
    MonthKey("green", 2020, 10): ("green_tripdata_2020-10.csv.gz", "csv.gz"),
    MonthKey("green", 2021, 1): ("green_tripdata_2021-01.parquet", "parquet"),
    MonthKey("green", 2023, 2): ("green_tripdata_2023-02.parquet", "parquet"),
}
OCT_2020, JAN_2021, FEB_2023 = MONTHS


@dataclass(frozen=True)
class Query:
    """One of the course's questions, written the course's way against the views, and the same
    question on the canonical tables."""

    name: str
    course: str
    canonical: str


QUERIES = [
    Query(
        "trips per day in a month",
        """SELECT CAST(lpep_pickup_datetime AS DATE) AS day, COUNT(1) AS trips
           FROM green_tripdata
           WHERE lpep_pickup_datetime >= '2021-01-01' AND lpep_pickup_datetime < '2021-02-01'
           GROUP BY 1 ORDER BY 1""",
        """SELECT CAST(pickup_datetime AS DATE) AS day, COUNT(1) AS trips
           FROM green_trips
           WHERE pickup_datetime >= '2021-01-01' AND pickup_datetime < '2021-02-01'
           GROUP BY 1 ORDER BY 1""",
    ),
    Query(
        "trips that start and end on one day",
        """SELECT COUNT(1) FROM green_tripdata
           WHERE CAST(lpep_pickup_datetime AS DATE) = '2020-10-15'
             AND CAST(lpep_dropoff_datetime AS DATE) = '2020-10-15'""",
        """SELECT COUNT(1) FROM green_trips
           WHERE CAST(pickup_datetime AS DATE) = '2020-10-15'
             AND CAST(dropoff_datetime AS DATE) = '2020-10-15'""",
    ),
    Query(
        "longest trip per day",
        """SELECT CAST(lpep_pickup_datetime AS DATE) AS day, MAX(trip_distance) AS longest
           FROM green_tripdata
           WHERE lpep_pickup_datetime >= '2020-10-01' AND lpep_pickup_datetime < '2020-11-01'
           GROUP BY 1 ORDER BY longest DESC, day""",
        """SELECT CAST(pickup_datetime AS DATE) AS day, MAX(trip_distance) AS longest
           FROM green_trips
           WHERE pickup_datetime >= '2020-10-01' AND pickup_datetime < '2020-11-01'
           GROUP BY 1 ORDER BY longest DESC, day""",
    ),
    Query(
        "top pickup zones",
        """SELECT z."Zone", COUNT(1) AS trips
           FROM green_tripdata t JOIN taxi_zone_lookup z ON t."PULocationID" = z."LocationID"
           WHERE t.lpep_pickup_datetime >= '2023-02-01' AND t.lpep_pickup_datetime < '2023-03-01'
           GROUP BY z."Zone" ORDER BY trips DESC, 1 LIMIT 10""",
        """SELECT z.zone, COUNT(1) AS trips
           FROM green_trips t JOIN taxi_zones z ON t.pu_location_id = z.location_id
           WHERE t.pickup_datetime >= '2023-02-01' AND t.pickup_datetime < '2023-03-01'
           GROUP BY z.zone ORDER BY trips DESC, 1 LIMIT 10""",
    ),
    Query(
        "drop-off zone of the largest tip from one pickup zone",
        """SELECT zdo."Zone", MAX(t.tip_amount) AS max_tip
           FROM green_tripdata t
           JOIN taxi_zone_lookup zpu ON t."PULocationID" = zpu."LocationID"
           JOIN taxi_zone_lookup zdo ON t."DOLocationID" = zdo."LocationID"
           WHERE zpu."Zone" = 'East Harlem North'
             AND t.lpep_pickup_datetime >= '2020-10-01' AND t.lpep_pickup_datetime < '2020-11-01'
           GROUP BY zdo."Zone" ORDER BY max_tip DESC, 1 LIMIT 5""",
        """SELECT zdo.zone, MAX(t.tip_amount) AS max_tip
           FROM green_trips t
           JOIN taxi_zones zpu ON t.pu_location_id = zpu.location_id
           JOIN taxi_zones zdo ON t.do_location_id = zdo.location_id
           WHERE zpu.zone = 'East Harlem North'
             AND t.pickup_datetime >= '2020-10-01' AND t.pickup_datetime < '2020-11-01'
           GROUP BY zdo.zone ORDER BY max_tip DESC, 1 LIMIT 5""",
    ),
    Query(
        "zones per borough",
        """SELECT "Borough", COUNT(1) FROM taxi_zone_lookup GROUP BY 1 ORDER BY 1""",
        """SELECT borough, COUNT(1) FROM taxi_zones GROUP BY 1 ORDER BY 1""",
    ),
]


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> dict[MonthKey, Cleaned]:
    tlc = require_tlc_data()
    root = tmp_path_factory.mktemp("lake")
    return {key: clean_into(tlc / "months" / name, kind, key, root) for key, (name, kind) in
            MONTHS.items()}  # fmt: skip


def load_all(sink: DuckDBWarehouse | PostgresWarehouse, name: str, months: dict) -> None:
    for month in months.values():
        month.load(sink, name)
    sink.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))


# --- DuckDB ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duck(cleaned: dict[MonthKey, Cleaned], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("duck") / "w.duckdb"
    load_all(DuckDBWarehouse(db), "duckdb", cleaned)
    return db


def duck_rows(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_course_queries_in_duckdb(query: Query, duck: Path):
    got = duck_rows(duck, query.course)
    assert got, "the query found nothing: it proves nothing"
    assert got == duck_rows(duck, query.canonical)


def test_duckdb_views_have_every_row_and_the_tlc_names(
    duck: Path, cleaned: dict[MonthKey, Cleaned]
):
    per_day = duck_rows(duck, QUERIES[0].course)
    assert sum(n for _, n in per_day) == cleaned[JAN_2021].report["rows_out"] == 76368
    total = sum(m.report["rows_out"] for m in cleaned.values())
    assert duck_rows(duck, "SELECT COUNT(*) FROM green_tripdata") == [(total,)]
    assert duck_rows(duck, "SELECT COUNT(*) FROM taxi_zone_lookup") == [(265,)]
    for view in (catalog.tlc_view("green"), catalog.zones_tlc_view()):
        with duckdb.connect(str(duck), read_only=True) as con:
            cur = con.execute(f'SELECT * FROM "{view.name}" LIMIT 0')
            assert [d[0] for d in cur.description] == [n for _, n in view.columns]
    # DuckDB ignores case: the course's unquoted spelling works too
    unquoted = duck_rows(
        duck,
        "SELECT COUNT(1) FROM green_tripdata t JOIN taxi_zone_lookup z"
        " ON t.PULocationID = z.LocationID WHERE z.Borough = 'Queens'",
    )
    assert unquoted == duck_rows(
        duck,
        "SELECT COUNT(1) FROM green_trips t JOIN taxi_zones z"
        " ON t.pu_location_id = z.location_id WHERE z.borough = 'Queens'",
    )


class Warnings(logging.Handler):
    """WARNING lines of the pipeline's loggers (on "pipeline", not the root: Luigi's first build
    in a process replaces the root's handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("pipeline")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_duckdb_view_upkeep(cleaned: dict[MonthKey, Cleaned], tmp_path: Path, warnings):
    db = tmp_path / "w.duckdb"
    wh = DuckDBWarehouse(db)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE VIEW green_tripdata AS SELECT 1 AS old")  # another shape
        con.execute("CREATE TABLE taxi_zone_lookup (mine INTEGER)")  # a table of the user's
        con.execute("INSERT INTO taxi_zone_lookup VALUES (7)")
    assert cleaned[JAN_2021].load(wh, "duckdb") == 76368
    assert duck_rows(db, "SELECT COUNT(*) FROM green_tripdata") == [(76368,)]
    wh.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))  # succeeds, warns
    assert duck_rows(db, "SELECT * FROM taxi_zone_lookup") == [(7,)]
    (line,) = warnings.lines
    assert "taxi_zone_lookup" in line
    assert "the load itself committed" in line
    # a reload and a second month keep one view over both
    assert cleaned[JAN_2021].load(wh, "duckdb") == 76368
    assert cleaned[FEB_2023].load(wh, "duckdb") == cleaned[FEB_2023].report["rows_out"]
    total = 76368 + cleaned[FEB_2023].report["rows_out"]
    assert duck_rows(db, "SELECT COUNT(*) FROM green_tripdata") == [(total,)]
    assert len(warnings.lines) == 1
    # once the name is free, the next zones load makes the view, and a reload under a view of
    # the user's keeps both (DuckDB's CREATE OR REPLACE TABLE does not mind views on it)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE taxi_zone_lookup")
    wh.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))
    with duckdb.connect(str(db)) as con:
        con.execute('CREATE VIEW my_zones AS SELECT "Zone" FROM taxi_zone_lookup')
    wh.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))
    assert duck_rows(db, "SELECT COUNT(*) FROM my_zones") == [(265,)]
    assert len(warnings.lines) == 1


# --- PostgreSQL -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_loaded(pg_database: PgConn, cleaned: dict[MonthKey, Cleaned]) -> Iterator[PostgresWarehouse]:
    """One schema for the module's read-only queries (loading three months per test would
    cost more than the queries)."""
    wh = PostgresWarehouse(pg_database, f"t_course_views_{os.urandom(3).hex()}")
    load_all(wh, "postgres", cleaned)
    yield wh
    drop_schema(wh)


def drop_schema(wh: PostgresWarehouse) -> None:
    conn = wh.pg.connect()
    conn.autocommit = True
    conn.cursor().execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(wh.schema)))  # fmt: skip
    conn.close()


def pg_rows(wh: PostgresWarehouse, query: str | sql.Composable) -> list[tuple]:
    """The query as the course writes it: unqualified names, found through search_path."""
    conn = wh.pg.connect()
    try:
        cur = conn.cursor()
        cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(wh.schema)))
        cur.execute(query)
        return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_course_queries_in_postgres(query: Query, pg_loaded: PostgresWarehouse):
    got = pg_rows(pg_loaded, query.course)
    assert got, "the query found nothing: it proves nothing"
    assert got == pg_rows(pg_loaded, query.canonical)


def test_postgres_views_have_every_row_and_the_tlc_names(
    pg_loaded: PostgresWarehouse, cleaned: dict[MonthKey, Cleaned]
):
    per_day = pg_rows(pg_loaded, QUERIES[0].course)
    assert sum(n for _, n in per_day) == cleaned[JAN_2021].report["rows_out"] == 76368
    total = sum(m.report["rows_out"] for m in cleaned.values())
    assert pg_rows(pg_loaded, "SELECT COUNT(*) FROM green_tripdata") == [(total,)]
    for view in (catalog.tlc_view("green"), catalog.zones_tlc_view()):
        columns = pg_rows(
            pg_loaded,
            sql.SQL(
                "SELECT v.column_name, v.data_type, t.data_type FROM information_schema.columns v"
                " JOIN information_schema.columns t ON t.table_schema = v.table_schema"
                " AND t.table_name = {} AND t.ordinal_position = v.ordinal_position"
                " WHERE v.table_schema = {} AND v.table_name = {} ORDER BY v.ordinal_position"
            ).format(sql.Literal(view.table), sql.Literal(pg_loaded.schema),
                     sql.Literal(view.name)),
        )  # fmt: skip
        assert [c for c, _, _ in columns] == [n for _, n in view.columns]
        assert all(v == t for _, v, t in columns), columns  # types pass through
    # PostgreSQL folds unquoted names to lower case: the course quotes "PULocationID", and an
    # unquoted PULocationID fails (docs/queries.md says so).
    with pytest.raises(
        psycopg2.errors.UndefinedColumn, match=r"column t\.pulocationid does not exist"
    ):
        pg_rows(pg_loaded, "SELECT t.PULocationID FROM green_tripdata t LIMIT 1")


def test_postgres_view_rendering_quotes_hostile_names(pg: PostgresWarehouse):
    """psycopg2 renders every name as an identifier: a hostile one becomes a column name."""
    hostile = catalog.TlcView('v"; DROP TABLE t; --', "t", (("a", 'x"; DROP TABLE t; --'),))
    conn = pg.pg.connect()
    try:
        cur = conn.cursor()
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg.schema)))
        cur.execute(sql.SQL("CREATE TABLE {} (a integer)").format(sql.Identifier(pg.schema, "t")))
        text = ddl.view_ddl(pg.schema, hostile).as_string(conn)
        assert '"x""; DROP TABLE t; --"' in text
        cur.execute(ddl.view_ddl(pg.schema, hostile))
        conn.commit()
    finally:
        conn.close()
    columns = pg_rows(
        pg,
        sql.SQL(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = {}"
            " AND table_name = {}"
        ).format(sql.Literal(pg.schema), sql.Literal(hostile.name)),
    )
    assert columns == [('x"; DROP TABLE t; --',)]
    assert pg_rows(pg, "SELECT count(*) FROM t") == [(0,)]  # still there


def test_postgres_view_upkeep(
    pg: PostgresWarehouse, cleaned: dict[MonthKey, Cleaned], warnings: Warnings
):
    """An older view of another shape is replaced (CREATE OR REPLACE alone cannot), a table with
    a view's name is left alone, a view of the user's on ours keeps both, and the zones reload
    under it; every load succeeds."""
    zones = read_zones(ZONES_FILE)
    sha = sha256_file(ZONES_FILE)
    assert cleaned[JAN_2021].load(pg, "postgres") == 76368
    conn = pg.pg.connect()
    cur = conn.cursor()
    cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg.schema)))
    cur.execute("DROP VIEW green_tripdata")
    cur.execute("CREATE VIEW green_tripdata AS SELECT vendor_id AS old FROM green_trips")
    cur.execute("CREATE TABLE taxi_zone_lookup (mine integer)")
    cur.execute("INSERT INTO taxi_zone_lookup VALUES (7)")
    conn.commit()
    assert cleaned[JAN_2021].load(pg, "postgres") == 76368
    pg.load_zones(zones, sha)
    (line,) = warnings.lines
    assert "taxi_zone_lookup" in line
    assert "is not a view" in line
    assert pg_rows(pg, "SELECT * FROM taxi_zone_lookup") == [(7,)]
    assert pg_rows(pg, 'SELECT COUNT(*), COUNT("VendorID") FROM green_tripdata')[0][0] == 76368
    # the user's own view on ours: the next load keeps it, and ours (same shape) is refreshed
    cur.execute("DROP TABLE taxi_zone_lookup")
    cur.execute("CREATE VIEW my_days AS SELECT CAST(lpep_pickup_datetime AS DATE) AS day"
                " FROM green_tripdata")  # fmt: skip
    conn.commit()
    pg.load_zones(zones, sha)
    cur.execute('CREATE VIEW my_zones AS SELECT "Zone" FROM taxi_zone_lookup')
    cur.execute("DELETE FROM taxi_zones WHERE location_id > 100")
    conn.commit()
    conn.close()
    warnings.lines.clear()
    assert cleaned[FEB_2023].load(pg, "postgres") == cleaned[FEB_2023].report["rows_out"]
    pg.load_zones(zones, sha)  # refilled in place: no drop of a table views depend on
    assert warnings.lines == []
    assert pg_rows(pg, "SELECT COUNT(*) FROM my_zones") == [(265,)]
    total = 76368 + cleaned[FEB_2023].report["rows_out"]
    assert pg_rows(pg, "SELECT COUNT(*) FROM my_days") == [(total,)]


def test_postgres_old_view_with_dependents_warns_and_the_load_succeeds(
    pg: PostgresWarehouse, cleaned: dict[MonthKey, Cleaned], warnings: Warnings
):
    assert cleaned[JAN_2021].load(pg, "postgres") == 76368
    conn = pg.pg.connect()
    cur = conn.cursor()
    cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg.schema)))
    cur.execute("DROP VIEW green_tripdata")
    cur.execute("CREATE VIEW green_tripdata AS SELECT vendor_id AS old FROM green_trips")
    cur.execute("CREATE VIEW mine AS SELECT old FROM green_tripdata")
    conn.commit()
    conn.close()
    assert cleaned[FEB_2023].load(pg, "postgres") == cleaned[FEB_2023].report["rows_out"]
    (line,) = warnings.lines
    assert "green_tripdata" in line
    assert "depend" in line
    total = 76368 + cleaned[FEB_2023].report["rows_out"]
    assert pg_rows(pg, "SELECT COUNT(*) FROM mine") == [(total,)]


def test_a_reader_of_the_view_delays_the_zones_load_a_bounded_time(
    pg: PostgresWarehouse, warnings: Warnings
):
    """Replacing the view waits for its readers, up to lock_timeout; then the zones load
    commits without it, and says so."""
    zones, sha = read_zones(ZONES_FILE), sha256_file(ZONES_FILE)
    pg.load_zones(zones, sha)
    reader = pg.pg.connect()  # a transaction that has read the view holds it until it ends
    # Were the wait unbounded, this ends it after 20 s, so the test fails instead of hanging.
    release = threading.Timer(20, reader.close)
    release.start()
    try:
        cur = reader.cursor()
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(pg.schema, "taxi_zone_lookup")))  # fmt: skip
        assert cur.fetchone() == (265,)
        quick = PostgresWarehouse(pg.pg, pg.schema, lock_timeout=1.0)
        started = time.monotonic()
        record = quick.load_zones(zones, sha)
        assert time.monotonic() - started < 10
    finally:
        release.cancel()
        reader.close()
    assert quick.zones_loaded() == record
    (line,) = warnings.lines
    assert "taxi_zone_lookup" in line
    assert "lock timeout" in line


def test_a_load_into_the_courses_table_name_makes_no_view(
    pg: PostgresWarehouse, cleaned: dict[MonthKey, Cleaned]
):
    wh = PostgresWarehouse(pg.pg, pg.schema, table="green_taxi_data")
    assert cleaned[JAN_2021].load(wh, "postgres") == 76368
    views = pg_rows(
        pg,
        sql.SQL("SELECT table_name FROM information_schema.views WHERE table_schema = {}").format(
            sql.Literal(pg.schema)
        ),
    )
    assert views == []


# --- the TLC's spelling, on the real files ----------------------------------------------------
def headers(tlc: Path) -> dict[str, tuple[str, list[str]]]:
    out = {}
    for path in [
        *(tlc / "months").iterdir(),
        tlc / "eras" / "yellow_tripdata_2025-01.head5.parquet",
    ]:
        color = path.name.split("_")[0]
        if path.suffix == ".parquet":
            out[path.name] = (color, pq.read_schema(path).names)
        else:
            with gzip.open(path, "rt", newline="") as f:
                out[path.name] = (color, next(csv.reader(f)))
    return out


def test_views_use_the_real_files_spelling(tlc: Path):
    """Every column of the TLC's recent files (and the course's csv.gz) is named in its view
    exactly as in the file, letter case included."""
    seen = headers(tlc)
    assert len(seen) >= 4
    for name, (color, header) in seen.items():
        index = catalog.alias_index(color)
        for h in header:
            column = index[catalog.normalise_name(h)].name
            assert catalog.tlc_name(color, column) == h, (name, h)


# --- BigQuery, on the emulator ----------------------------------------------------------------
def test_course_queries_in_bigquery(
    local_bigquery, gcs_bucket: str, bq_dataset: str, cleaned: dict[MonthKey, Cleaned], warnings
):
    """The same questions through local-bigquery: the months from gs:// as LoadBigQuery loads
    them, the views made by query jobs. BigQuery quotes names with backticks (a double-quoted
    name is a string there) and ignores case, so the course writes them bare."""
    from google.cloud import bigquery, storage

    from pipeline.sinks.bigquery.warehouse import BigQueryWarehouse, bigquery_client

    client = bigquery_client(local_bigquery.project, "US", local_bigquery.endpoint)
    wh = BigQueryWarehouse(client, bq_dataset)
    bucket = storage.Client(project=local_bigquery.project).bucket(gcs_bucket)
    for key, month in cleaned.items():
        uris = []
        for i, path in enumerate(month.paths):
            blob = bucket.blob(f"clean/green/{key.yyyymm}/part-{i}.parquet")
            blob.upload_from_filename(path)
            uris.append(f"gs://{gcs_bucket}/{blob.name}")
        wh.replace_month(month.report, uris)
    wh.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))
    assert warnings.lines == []
    for view in (catalog.tlc_view("green"), catalog.zones_tlc_view()):
        table = client.get_table(wh.table_id(view.name))
        assert table.table_type == "VIEW"
    config = bigquery.QueryJobConfig(default_dataset=f"{local_bigquery.project}.{bq_dataset}")

    def rows(query: str) -> list[tuple]:
        return [tuple(r.values()) for r in client.query(query, job_config=config).result()]

    for query in QUERIES:
        got = rows(query.course.replace('"', ""))
        assert got, query.name
        assert got == rows(query.canonical), query.name
    total = sum(m.report["rows_out"] for m in cleaned.values())
    assert rows("SELECT COUNT(*) FROM green_tripdata") == [(total,)]


def test_bigquery_leaves_a_table_with_a_views_name_alone(local_bigquery, bq_dataset: str, warnings):
    from google.cloud import bigquery

    from pipeline.sinks.bigquery.warehouse import BigQueryWarehouse, bigquery_client

    client = bigquery_client(local_bigquery.project, "US", local_bigquery.endpoint)
    wh = BigQueryWarehouse(client, bq_dataset)
    client.create_dataset(f"{local_bigquery.project}.{bq_dataset}")
    mine = bigquery.Table(wh.table_id("taxi_zone_lookup"), [bigquery.SchemaField("mine", "INT64")])
    client.create_table(mine)
    record = wh.load_zones(read_zones(ZONES_FILE), sha256_file(ZONES_FILE))
    assert record.rows_out == 265
    assert wh.zones_loaded() is not None
    table = client.get_table(wh.table_id("taxi_zone_lookup"))
    assert (table.table_type, [f.name for f in table.schema]) == ("TABLE", ["mine"])
    (line,) = warnings.lines
    assert "taxi_zone_lookup" in line
    assert "a TABLE has that name" in line
