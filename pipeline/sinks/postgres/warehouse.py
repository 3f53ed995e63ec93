"""PostgreSQL sink: ``{schema}.{color}_trips``, one native partition per month.

How a month is replaced, and why:

1. Under a session advisory lock for (table, month), so two workers never load one month at
   once, a fresh staging table ``_stage_{color}_trips_YYYYMM`` is created (a stale one from a
   killed run is dropped first). It has no index while it is filled.
2. The clean parquet files are copied into it with **binary COPY**, by DuckDB's postgres
   extension: DuckDB reads the parquet column by column and streams it to the server as
   binary tuples, so the server does no text parsing (about 2x PostgreSQL's own CSV COPY)
   and the client never holds the month in memory (benchmarks/README.md). The extension
   comes from its PyPI wheel (``duckdb-extension-postgres_scanner``) and is loaded from that
   file: nothing is fetched at run time.
3. The stage carries the month's CHECK constraint from its creation, so COPY tests each row
   as it arrives and ATTACH needs no validation scan. The row count is checked against the
   clean month's quality report, and the index is built.
4. One short transaction swaps it in: detach and drop the old month's partition, rename the
   stage, attach it, and write Luigi's own ``PostgresTarget`` marker (``table_updates``). A
   reader sees the old month or the new one, never half of either, and a killed load leaves
   only a ``_stage_`` table that the next run drops.

psycopg2 does everything but the COPY. Identifiers go through ``psycopg2.sql`` (and DuckDB's
double-quote rule in the one DuckDB statement); passwords never reach a log line, a message
or a task parameter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv
from luigi.contrib.postgres import PostgresTarget
from psycopg2 import sql

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.sinks.base import clean_sha256
from pipeline.util.failpoints import failpoint

log = logging.getLogger(__name__)

ZONES_TABLE = "taxi_zones"
STAGE_PREFIX = "_stage_"
INDEXES = ((catalog.PICKUP_COLUMN, "brin"),)

_PG_TYPES = {
    pa.timestamp("us"): "timestamp",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.string(): "text",
}

# (rows copied so far, expected rows)
CopyProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class PgConn:
    """Where to connect. ``None`` leaves a setting to libpq (PG* variables, .pgpass, socket)."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: int = 10

    @classmethod
    def resolve(
        cls,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        connect_timeout: int = 10,
        environ: dict[str, str] | None = None,
    ) -> PgConn:
        """libpq's variables win over the given (config file) values, as the docs promise."""
        env = os.environ if environ is None else environ
        return cls(
            host=env.get("PGHOST") or host or None,
            port=int(env.get("PGPORT") or port or 5432),
            database=env.get("PGDATABASE") or database or None,
            user=env.get("PGUSER") or user or None,
            password=env.get("PGPASSWORD") or password or None,
            connect_timeout=connect_timeout,
        )

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
            "connect_timeout": self.connect_timeout,
            "application_name": "tlc-pipeline",
        }
        return {k: v for k, v in out.items() if v is not None}

    def describe(self) -> str:
        """For messages: never the password."""
        host = self.host or os.environ.get("PGHOST") or "local socket"
        return f"{self.user or '(libpq default user)'}@{host}:{self.port}/{self.database}"

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text

    def connect(self) -> psycopg2.extensions.connection:
        try:
            conn = psycopg2.connect(**self.kwargs())
        except psycopg2.Error as e:
            why = " ".join(self.scrub(str(e)).split())  # libpq adds a hint on a second line
            raise PipelineError(f"PostgreSQL {self.describe()}: cannot connect: {why}") from None
        conn.set_client_encoding("utf-8")
        return conn


class _Target(PostgresTarget):
    """Luigi's marker, connecting through PgConn (so libpq defaults and .pgpass apply)."""

    def __init__(self, pg: PgConn, table: str, update_id: str):
        super().__init__(
            host=pg.host or "",
            database=pg.database,
            user=pg.user,
            password=pg.password,
            table=table,
            update_id=update_id,
            port=pg.port,
        )
        self._pg = pg

    def connect(self) -> psycopg2.extensions.connection:
        return self._pg.connect()


def update_id(
    schema: str, table: str, year: int, month: int, rows: int, source: str, clean: str
) -> str:
    """The marker's key: the month, and the clean data it was loaded from."""
    return f"{_prefix(schema, table, year, month)}rows={rows}/source={source}/clean={clean}"


def _prefix(schema: str, table: str, year: int, month: int) -> str:
    return f"{schema}.{table}/{year:04d}-{month:02d}/"


def _parse_marker(update: str, prefix: str) -> dict[str, Any]:
    fields = dict(part.split("=", 1) for part in update[len(prefix) :].split("/") if "=" in part)
    return {
        "rows": int(fields.get("rows", -1)),
        "source_sha256": fields.get("source") or None,
        "clean_sha256": fields.get("clean") or None,
    }


def trips_table(color: str) -> str:
    if color not in catalog.COLORS:
        raise ValueError(f"unknown colour {color!r}")
    return f"{color}_trips"


def columns_ddl(schema: pa.Schema, not_null: tuple[str, ...] = ()) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(f.name),
            sql.SQL(_PG_TYPES[f.type]),
            sql.SQL(" NOT NULL" if f.name in not_null else ""),
        )
        for f in schema
    )


def _split(rows: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) row ranges covering 0..rows in at most ``parts`` near-equal pieces."""
    parts = max(1, min(parts, rows))
    bounds = [rows * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _duck_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duck_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def postgres_extension_path() -> Path:
    """The postgres extension from its PyPI wheel, for exactly this DuckDB release."""
    import duckdb
    import duckdb_extension_postgres_scanner as wheel

    path = (
        Path(wheel.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "postgres_scanner.duckdb_extension"
    )
    if not path.exists():
        raise PipelineError(
            f"DuckDB's postgres extension for DuckDB {duckdb.__version__} is not installed "
            f"({path} is missing): pip install 'duckdb-extension-postgres_scanner=="
            f"{duckdb.__version__}'"
        )
    return path


class PostgresWarehouse:
    def __init__(
        self,
        pg: PgConn,
        schema: str = "public",
        lock_timeout: float = 60.0,
        copy_streams: int = 2,
        table: str | None = None,
    ):
        """``table`` loads every colour into that one table instead of ``{color}_trips``
        (the course's ``--table_name``)."""
        self.pg = pg
        self.schema = schema
        self.table = table
        self.lock_timeout = lock_timeout
        self.copy_streams = max(1, copy_streams)

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.pg.describe()}, schema={self.schema!r})"

    # -- connections ------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg2.extensions.connection]:
        conn = self.pg.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """One clear error naming the server and the step; never the password."""
        import duckdb

        try:
            yield
        except (psycopg2.Error, duckdb.Error) as e:
            msg = self.pg.scrub(str(e)).strip().splitlines()
            raise PipelineError(
                f"PostgreSQL {self.pg.describe()}: {what} failed: {' '.join(msg)}"
            ) from None

    def _ident(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def _table(self, color: str) -> str:
        if color == ZONES_TABLE:
            return ZONES_TABLE
        return self.table or trips_table(color)

    # -- the month --------------------------------------------------------------------------
    def replace_month(
        self,
        color: str,
        year: int,
        month: int,
        files: list[Path],
        quality: dict[str, Any],
        progress: CopyProgress | None = None,
    ) -> int:
        table = self._table(color)
        ym = f"{year:04d}{month:02d}"
        part, stage = f"{table}_{ym}", f"{STAGE_PREFIX}{table}_{ym}"
        start, end = catalog.month_bounds(year, month)
        expected = quality["rows_out"]
        what = f"load of {color} {year:04d}-{month:02d} into {self.schema}.{table}"
        schema = catalog.arrow_schema(color)
        with self._errors(what), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            # Held until this connection closes: a second worker on the same month waits.
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"{self.schema}.{part}"])
            self._ensure_parent(cur, table, schema)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(stage)))
            # The month's CHECK constraint is there from the start: COPY tests each row as it
            # arrives (no second scan), and it lets ATTACH skip its own validation scan.
            cur.execute(
                sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({} >= %s AND {} < %s))").format(
                    self._ident(stage),
                    columns_ddl(schema, not_null=(catalog.PICKUP_COLUMN,)),
                    sql.Identifier(f"{part}_month"),
                    sql.Identifier(catalog.PICKUP_COLUMN),
                    sql.Identifier(catalog.PICKUP_COLUMN),
                ),
                [start, end],
            )
            # The count COPY reported for the stage, which nothing else writes to.
            rows = self._copy(stage, schema.names, files, quality, progress)
            if rows != expected:
                cur.execute(sql.SQL("DROP TABLE {}").format(self._ident(stage)))
                raise PipelineError(
                    f"PostgreSQL {self.pg.describe()}: {what}: {rows} rows arrived, the clean "
                    f"month has {expected}; nothing was replaced"
                )
            # BRIN after the COPY: built in one pass it costs less than kept up row by row.
            self._index(cur, stage)
            failpoint("postgres.before_swap")
            # No ANALYZE here: autovacuum analyzes a new partition of this size within a
            # minute, and doing it inline costs a quarter of the COPY time.
            self._swap(conn, table, part, stage, start, end, rows, quality)
        log.info("%s: %d rows", what, rows)
        return rows

    def _ensure_parent(self, cur: Any, table: str, schema: pa.Schema) -> None:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        cur.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            [self.schema, table],
        )
        found = cur.fetchone()
        if found is None:
            cur.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY RANGE ({})").format(
                    self._ident(table),
                    columns_ddl(schema, not_null=(catalog.PICKUP_COLUMN,)),
                    sql.Identifier(catalog.PICKUP_COLUMN),
                )
            )
            self._index(cur, table)
        elif found[0] != "p":
            raise PipelineError(
                f"PostgreSQL {self.pg.describe()}: {self.schema}.{table} exists but is not "
                "partitioned by month (was it made by another loader?). Rename or drop it."
            )

    def _index(self, cur: Any, table: str) -> None:
        # BRIN on the pickup time: trips arrive roughly in time order, so a few kB index the
        # month and it builds in a quarter of a B-tree's time. That is the one index: month
        # queries scan their partition anyway, and a B-tree on the zone ids cost 0.7 s per
        # 1.3M rows for joins that hash-join faster without it. The stage's index matches the
        # parent's, so ATTACH adopts it instead of building one under the lock.
        for column, method in INDEXES:
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
                    sql.Identifier(f"{table}_{column}_idx"[:63]),
                    self._ident(table),
                    sql.SQL(method),
                    sql.Identifier(column),
                )
            )

    def _copy(
        self,
        stage: str,
        columns: list[str],
        files: list[Path],
        quality: dict[str, Any],
        progress: CopyProgress | None,
    ) -> int:
        """COPY the files into ``stage`` as ``copy_streams`` parallel binary COPYs; return the
        rows they report.

        One COPY keeps one server backend busy parsing tuples, which is the bottleneck (the
        client is idle half the time); two COPYs into the same table take 25-30 % less time
        on two cores (benchmarks/README.md). Each stream takes a contiguous range of each
        file's rows, which DuckDB reads by row group.
        """
        import duckdb

        rows_of = {f["name"]: int(f["rows"]) for f in quality["files"]}
        ranges = [
            (path, lo, hi)
            for path in files
            for lo, hi in _split(rows_of.get(path.name, 0), self.copy_streams)
        ]
        con = duckdb.connect(config={"autoinstall_known_extensions": False})
        try:
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET enable_progress_bar = false")
            con.load_extension(str(postgres_extension_path()))
            opts = {
                "HOST": self.pg.host,
                "PORT": str(self.pg.port) if self.pg.port else None,
                "DATABASE": self.pg.database,
                "USER": self.pg.user,
                "PASSWORD": self.pg.password,
            }
            # A secret, not a connection string, so the password is in no statement text
            # that DuckDB might echo in an error.
            secret = ", ".join(f"{k} {_duck_literal(v)}" for k, v in opts.items() if v)
            con.execute(
                f"CREATE TEMPORARY SECRET tlc_pg (TYPE postgres{', ' if secret else ''}{secret})"
            )
            con.execute(
                "ATTACH '' AS pg (TYPE postgres, SECRET tlc_pg, SCHEMA "
                f"{_duck_literal(self.schema)})"
            )
            target = f"pg.{_duck_ident(self.schema)}.{_duck_ident(stage)}"
            cols = ", ".join(_duck_ident(name) for name in columns)
            insert = (
                f"INSERT INTO {target} ({cols}) SELECT {cols}"
                " FROM read_parquet(?, hive_partitioning = false, file_row_number = true)"
                " WHERE file_row_number >= ? AND file_row_number < ?"
            )

            def one(part: tuple[Path, int, int]) -> int:
                cursor = con.cursor()  # a DuckDB connection of its own, and a PG backend
                try:
                    path, lo, hi = part
                    (n,) = cursor.execute(insert, [str(path), lo, hi]).fetchone()
                    return int(n)
                finally:
                    cursor.close()

            with (
                _CopyWatcher(self.pg, self.schema, stage, quality["rows_out"], progress),
                ThreadPoolExecutor(self.copy_streams, thread_name_prefix="copy") as pool,
            ):
                return sum(pool.map(one, ranges))
        finally:
            con.close()

    def _swap(
        self,
        conn: Any,
        table: str,
        part: str,
        stage: str,
        start: dt.datetime,
        end: dt.datetime,
        rows: int,
        quality: dict[str, Any],
    ) -> None:
        year, month = start.year, start.month
        manifest = quality.get("source_manifest") or {}
        target = _Target(
            self.pg,
            f"{self.schema}.{table}",
            update_id(
                self.schema,
                table,
                year,
                month,
                rows,
                manifest.get("sha256") or "",
                clean_sha256(quality),
            ),
        )
        target.create_marker_table()  # its own connection; a no-op once the table exists
        conn.autocommit = False
        try:
            cur = conn.cursor()
            cur.execute("SET LOCAL lock_timeout = %s", [f"{int(self.lock_timeout * 1000)}ms"])
            cur.execute("SELECT to_regclass(%s)", [self._qualified(part)])
            if cur.fetchone()[0] is not None:
                cur.execute(
                    "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s)",
                    [self._qualified(part)],
                )
                if cur.fetchone():
                    cur.execute(
                        sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                            self._ident(table), self._ident(part)
                        )
                    )
                cur.execute(sql.SQL("DROP TABLE {}").format(self._ident(part)))
            cur.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    self._ident(stage), sql.Identifier(part)
                )
            )
            for column, _ in INDEXES:
                cur.execute(
                    sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        self._ident(f"{stage}_{column}_idx"[:63]),
                        sql.Identifier(f"{part}_{column}_idx"[:63]),
                    )
                )
            cur.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(
                    self._ident(table), self._ident(part)
                ),
                [start, end],
            )
            self._delete_markers(cur, table, year, month)
            target.touch(conn)
            failpoint("postgres.swapping")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True

    def _qualified(self, table: str) -> str:
        """A name for to_regclass(): quoted, so odd schema names resolve exactly."""
        return f"{_duck_ident(self.schema)}.{_duck_ident(table)}"

    def _delete_markers(self, cur: Any, table: str, year: int, month: int) -> None:
        prefix = _prefix(self.schema, table, year, month)
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE left(update_id, %s) = %s").format(
                sql.Identifier(PostgresTarget.marker_table)
            ),
            [len(prefix), prefix],
        )

    # -- markers ----------------------------------------------------------------------------
    def loaded(self, color: str, year: int, month: int) -> dict[str, Any] | None:
        prefix = _prefix(self.schema, self._table(color), year, month)
        with self._errors("reading load markers"), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            try:
                cur.execute(
                    sql.SQL(
                        "SELECT update_id FROM {} WHERE left(update_id, %s) = %s"
                        " ORDER BY inserted DESC LIMIT 1"
                    ).format(sql.Identifier(PostgresTarget.marker_table)),
                    [len(prefix), prefix],
                )
            except psycopg2.errors.UndefinedTable:
                return None
            row = cur.fetchone()
        return None if row is None else _parse_marker(row[0], prefix)

    def loaded_months(self) -> dict[tuple[str, int, int], dict[str, Any]]:
        """Every month marker of this schema's trips tables, in one query."""
        out: dict[tuple[str, int, int], dict[str, Any]] = {}
        with self._errors("reading load markers"), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            try:
                cur.execute(
                    sql.SQL(
                        "SELECT update_id FROM {} WHERE left(update_id, %s) = %s ORDER BY inserted"
                    ).format(sql.Identifier(PostgresTarget.marker_table)),
                    [len(self.schema) + 1, self.schema + "."],
                )
            except psycopg2.errors.UndefinedTable:
                return out
            for (uid,) in cur.fetchall():
                table, _, rest = uid[len(self.schema) + 1 :].partition("/")
                ym = rest.split("/", 1)[0]
                color = table.removesuffix("_trips")
                if self.table is not None or color not in catalog.COLORS or len(ym) != 7:
                    continue
                key = (color, int(ym[:4]), int(ym[5:]))
                out[key] = _parse_marker(uid, _prefix(self.schema, table, key[1], key[2]))
        return out

    def forget(self, color: str, year: int, month: int) -> bool:
        """Delete the month's marker, so the next run reloads it (replacing its rows)."""
        with self._errors("forgetting a load marker"), self.connect() as conn:
            cur = conn.cursor()
            try:
                self._delete_markers(cur, self._table(color), year, month)
            except psycopg2.errors.UndefinedTable:
                return False
            conn.commit()
            return cur.rowcount > 0

    # -- zones ------------------------------------------------------------------------------
    def replace_zones(self, table: pa.Table, sha256: str) -> int:
        stage = f"{STAGE_PREFIX}{ZONES_TABLE}"
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        buf.seek(0)
        target = _Target(
            self.pg,
            f"{self.schema}.{ZONES_TABLE}",
            update_id(self.schema, ZONES_TABLE, 0, 0, table.num_rows, sha256, sha256),
        )
        with self._errors(f"load of {self.schema}.{ZONES_TABLE}"), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            target.create_marker_table()
            conn.autocommit = False
            try:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(stage)))
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                        self._ident(stage),
                        columns_ddl(catalog.ZONES_SCHEMA),
                        sql.Identifier("location_id"),
                    )
                )
                cur.copy_expert(
                    sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)")
                    .format(self._ident(stage))
                    .as_string(conn),
                    buf,
                )
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(ZONES_TABLE)))
                cur.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        self._ident(stage), sql.Identifier(ZONES_TABLE)
                    )
                )
                self._delete_markers(cur, ZONES_TABLE, 0, 0)
                target.touch(conn)
                failpoint("zones.postgres")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return table.num_rows


class _CopyWatcher:
    """Reports a running COPY's progress from pg_stat_progress_copy (PostgreSQL 14+), on its
    own connection, so the visualizer shows "COPY 800,000 of 1,342,377 rows"."""

    def __init__(
        self, pg: PgConn, schema: str, table: str, expected: int, progress: CopyProgress | None
    ):
        self.pg, self.schema, self.table = pg, schema, table
        self.expected, self.progress = expected, progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copy-progress", daemon=True)

    def __enter__(self) -> _CopyWatcher:
        if self.progress:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.progress and exc[0] is None:
            self.progress(self.expected, self.expected)

    def _run(self) -> None:
        try:
            conn = self.pg.connect()
        except PipelineError:
            return  # progress is a nicety; the load reports its own errors
        try:
            conn.autocommit = True
            cur = conn.cursor()
            name = f"{_duck_ident(self.schema)}.{_duck_ident(self.table)}"
            wait = 0.1  # the first look soon, then once a second
            while not self._stop.wait(wait):
                wait = 1.0
                cur.execute(
                    "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy"
                    " WHERE relid = to_regclass(%s)",
                    [name],
                )
                assert self.progress is not None
                done = int(cur.fetchone()[0])
                self.progress(done, self.expected)
                if done:
                    failpoint("postgres.copying")  # parks this thread; the COPY goes on
        except psycopg2.Error:
            pass  # e.g. PostgreSQL 13 has no pg_stat_progress_copy
        finally:
            conn.close()
