"""PostgreSQL sink: ``{schema}.{color}_trips``, one native partition per month.

How a month is replaced, and why:

1. Under a session advisory lock for (table, month), so two workers never load one month at
   once, a fresh staging table ``_stage_{color}_trips_YYYYMM`` is created (a stale one from a
   killed run is dropped first). It has no index while it is filled.
2. The clean parquet files are copied into it with parallel **binary COPY** streams
   (``copy.py``).
3. The stage carries the month's CHECK constraint from its creation, so COPY tests each row as
   it arrives and ATTACH needs no validation scan. The row count is checked against the clean
   month's quality report, and the index is built.
4. One short transaction swaps it in: detach and drop the old month's partition, rename the
   stage, attach it, and write the month's row of the load ledger ``{schema}._pipeline_loads``.
   The same transaction makes the view ``{color}_tripdata`` again, the table under the TLC's
   column names (``ddl.view_ddl``), in a savepoint: a view that cannot be made only warns.
   A reader sees the old month or the new one, never half of either, and a killed load leaves
   only a ``_stage_`` table that the next run drops.

psycopg2 does everything but the COPY. Every name goes through ``psycopg2.sql.Identifier``,
every value is a query parameter; passwords never reach a log line, a message or a task
parameter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import time
from collections.abc import Iterator, Sequence

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter, PipelineError
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
from pipeline.sinks.postgres import ddl
from pipeline.sinks.postgres.connection import PgConn
from pipeline.sinks.postgres.copy import Copier
from pipeline.util.failpoints import failpoint

log = logging.getLogger(__name__)

ZONES_TABLE = catalog.ZONES_TABLE
STAGE_PREFIX = "_stage_"
NAME_MAX = 63  # PostgreSQL's identifiers: NAMEDATALEN - 1 bytes
# The longest name made from a table's is its stage's, and the stage's index adds at least
# one byte more before ddl.index_name cuts it at 63 (else it would be the stage's own name).
_ADDED = len(f"{STAGE_PREFIX}_200901") + 1
# How long a load waits for another session's load of the same month (its advisory lock).
# A whole month's COPY takes seconds to a minute (benchmarks/README.md); a holder that has not
# let go after this long is hung (a half-open connection holds its lock until TCP gives up).
MONTH_LOCK_WAIT = 900.0
LUIGI_MARKERS = "table_updates"  # where loads before the ledger recorded themselves

Cursor = psycopg2.extensions.cursor
Connection = psycopg2.extensions.connection


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
        for kind, name, added in (("schema", schema, 0), ("table", table, _ADDED)):
            if name is not None and len(name.encode()) + added > NAME_MAX:
                # PostgreSQL cuts longer names without a word: two months' partitions or
                # stages would share one name, and a load would drop the other month's.
                raise BadParameter(
                    f"PostgreSQL {kind} name {name!r} is too long: at most "
                    f"{NAME_MAX - added} bytes (names are cut at {NAME_MAX}"
                    + (", and a month's stage adds _stage_ and _YYYYMM)" if added else ")")
                )
        self.pg = pg
        self.schema = schema
        self.table = table
        self.lock_timeout = lock_timeout
        self.copy_streams = max(1, copy_streams)

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.pg.describe()}, schema={self.schema!r})"

    # -- connections and names ------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
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
            msg = " ".join(self.pg.scrub(str(e)).split())
            raise PipelineError(f"PostgreSQL {self.pg.describe()}: {what} failed: {msg}") from None

    def _ident(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def _table(self, color: str) -> str:
        return self.table or catalog.trips_table(color)

    # -- the month ------------------------------------------------------------------------------
    def replace_month(
        self, report: QualityReport, files: Sequence[str], progress: CopyProgress | None = None
    ) -> LoadRecord:
        started = time.monotonic()
        key = MonthKey(report["color"], report["year"], report["month"])
        table = self._table(key.color)
        part, stage = f"{table}_{key.yyyymm}", f"{STAGE_PREFIX}{table}_{key.yyyymm}"
        start, end = key.bounds()
        expected = report["rows_out"]
        what = f"load of {key.label} into {self.schema}.{table}"
        fields = ddl.fields_of(catalog.arrow_schema(key.color))
        # DuckDB starts and attaches on a thread while this one does the DDL (copy.py).
        with self._errors(what), Copier(self.pg, self.schema) as copier, self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            # Held until this connection closes: a second worker on the same month waits,
            # bounded; when the first loaded this same clean month meanwhile, it is done.
            # (A reload of a month already loaded before it started, as tests do, goes on.)
            before = self.loaded(key)
            self._lock_month(cur, f"{self.schema}.{part}", what)
            done = self.loaded(key)
            if done is not None and done != before and done.matches(report):
                log.info("%s: another worker loaded it meanwhile; nothing to do", what)
                return done
            self._ensure_schema(cur)
            self._ensure_parent(cur, table, fields)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(stage)))
            # The month's CHECK constraint is there from the start: COPY tests each row as it
            # arrives (no second scan), and it lets ATTACH skip its own validation scan.
            cur.execute(
                sql.SQL("CREATE TABLE {} ({}, CONSTRAINT {} CHECK ({} >= %s AND {} < %s))").format(
                    self._ident(stage),
                    ddl.columns(fields, not_null=(catalog.PICKUP_COLUMN,)),
                    sql.Identifier(f"{part}_month"),
                    sql.Identifier(catalog.PICKUP_COLUMN),
                    sql.Identifier(catalog.PICKUP_COLUMN),
                ),
                [start, end],
            )
            # The count COPY reported for the stage, which nothing else writes to.
            rows = copier.copy(
                stage, [name for name, _ in fields], files, report, self.copy_streams, progress
            )
            if rows != expected:
                cur.execute(sql.SQL("DROP TABLE {}").format(self._ident(stage)))
                raise PipelineError(
                    f"PostgreSQL {self.pg.describe()}: {what}: {rows} rows arrived, the clean "
                    f"month has {expected}; nothing was replaced"
                )
            # BRIN after the COPY: built in one pass it costs less than kept up row by row
            # (PostgreSQL 15: 0.4 s of CPU, against 0.8 s more for the COPY), and every range
            # is summarized before readers see the month (benchmarks/README.md).
            self._index(cur, stage)
            failpoint("postgres.before_swap")
            # No ANALYZE here: autovacuum analyzes a new partition of this size within a
            # minute, and doing it inline costs a quarter of the COPY time.
            record = LoadRecord.for_month(report, table, rows, time.monotonic() - started)
            # The views name {color}_trips; a load into the course's --table_name gets none.
            views = () if self.table else (catalog.tlc_view(key.color),)
            self._swap(conn, table, part, stage, start, end, record, views)
        return record

    def _lock_month(self, cur: Cursor, name: str, what: str) -> None:
        cur.execute("SET lock_timeout = %s", [f"{int(MONTH_LOCK_WAIT * 1000)}ms"])
        try:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
        except psycopg2.errors.LockNotAvailable:
            raise PipelineError(
                f"PostgreSQL {self.pg.describe()}: {what}: another session has held the "
                f"month's lock for {MONTH_LOCK_WAIT:.0f} s (a load of the same month that "
                "does not end: see pg_locks); nothing was replaced"
            ) from None
        cur.execute("RESET lock_timeout")

    def _ensure_schema(self, cur: Cursor) -> None:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema])
        if cur.fetchone() is None:
            with self._creating(cur, "schema"):
                cur.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
        self._ensure_ledger(cur)

    @contextlib.contextmanager
    def _creating(self, cur: Cursor, what: str) -> Iterator[None]:
        """One transaction, holding a lock that every worker creating ``what`` in this schema
        takes. IF NOT EXISTS alone is not enough: two sessions that create the same schema or
        table at once both see it missing, and the second fails on the catalog's unique index
        (``pg_type_typname_nsp_index``) when the first commits. Workers on many hosts starting
        one backfill into an empty database do exactly that."""
        cur.execute("BEGIN")
        try:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{self.schema}.create.{what}"]
            )
            yield
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _ensure_parent(
        self, cur: Cursor, table: str, fields: Sequence[tuple[str, pa.DataType]]
    ) -> None:
        cur.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            [self.schema, table],
        )
        found = cur.fetchone()
        if found is None:
            with self._creating(cur, table):
                cur.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY RANGE ({})").format(
                        self._ident(table),
                        ddl.columns(fields, not_null=(catalog.PICKUP_COLUMN,)),
                        sql.Identifier(catalog.PICKUP_COLUMN),
                    )
                )
                self._index(cur, table)
        elif found[0] != "p":
            raise PipelineError(
                f"PostgreSQL {self.pg.describe()}: {self.schema}.{table} exists but is not "
                "partitioned by month (was it made by another loader?). Rename or drop it."
            )

    def _index(self, cur: Cursor, table: str) -> None:
        for column, method in ddl.INDEXES:
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
                    sql.Identifier(ddl.index_name(table, column)),
                    self._ident(table),
                    sql.SQL(method),
                    sql.Identifier(column),
                )
            )

    def _swap(
        self,
        conn: Connection,
        table: str,
        part: str,
        stage: str,
        start: dt.datetime,
        end: dt.datetime,
        record: LoadRecord,
        views: Sequence[catalog.TlcView] = (),
    ) -> None:
        conn.autocommit = False
        try:
            cur = conn.cursor()
            cur.execute("SET LOCAL lock_timeout = %s", [f"{int(self.lock_timeout * 1000)}ms"])
            cur.execute("SELECT to_regclass(%s)", [self._ident(part).as_string(conn)])
            found = cur.fetchone()
            if found and found[0] is not None:
                cur.execute(
                    "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s)",
                    [self._ident(part).as_string(conn)],
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
            for column, _ in ddl.INDEXES:
                cur.execute(
                    sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        self._ident(ddl.index_name(stage, column)),
                        sql.Identifier(ddl.index_name(part, column)),
                    )
                )
            cur.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(
                    self._ident(table), self._ident(part)
                ),
                [start, end],
            )
            self._write_ledger(cur, record)
            self._refresh_views(cur, views)
            failpoint("postgres.swapping")
            conn.commit()
        except BaseException:
            _rollback(conn)
            raise
        finally:
            if not conn.closed:
                conn.autocommit = True

    def _refresh_views(self, cur: Cursor, views: Sequence[catalog.TlcView]) -> None:
        """CREATE OR REPLACE each view with the TLC's names inside the load's transaction, so
        readers see the new data and its view together. Each view has a savepoint of its own:
        one that cannot be made (its name taken by a table, a lock that times out) costs the
        view, with one warning line, never the load."""
        # Replacing a view waits for its readers: bounded, as the swap is (the zones load sets
        # no timeout of its own).
        cur.execute("SET LOCAL lock_timeout = %s", [f"{int(self.lock_timeout * 1000)}ms"])
        for view in views:
            cur.execute("SAVEPOINT tlc_view")
            try:
                try:
                    cur.execute(ddl.view_ddl(self.schema, view))
                except psycopg2.errors.InvalidTableDefinition:
                    # "cannot change name of view column": an older view of another shape.
                    # CREATE OR REPLACE VIEW may only add columns at the end; drop and make it
                    # (which fails, and warns, if a view of the user's depends on it).
                    cur.execute("ROLLBACK TO SAVEPOINT tlc_view")
                    cur.execute(ddl.drop_view(self.schema, view))
                    cur.execute(ddl.view_ddl(self.schema, view))
            except psycopg2.Error as e:
                cur.execute("ROLLBACK TO SAVEPOINT tlc_view")
                log.warning(
                    "PostgreSQL %s: view %s.%s (the TLC's names over %s) not refreshed, the "
                    "load itself goes on: %s",
                    self.pg.describe(),
                    self.schema,
                    view.name,
                    view.table,
                    " ".join(self.pg.scrub(str(e)).split()),
                )
            cur.execute("RELEASE SAVEPOINT tlc_view")

    # -- the ledger -----------------------------------------------------------------------------
    def _ensure_ledger(self, cur: Cursor) -> None:
        """Create the ledger once per schema, and carry over the loads that Luigi's
        ``table_updates`` markers recorded before it existed (so they are not loaded again).
        Those markers stay where they are: Luigi's table may hold other projects' rows."""

        def exists() -> bool:
            # A query on pg_class, not to_regclass(): after waiting on an advisory lock the
            # session's catalog cache may not yet show what the other worker committed; a
            # query's own snapshot does (READ COMMITTED).
            cur.execute(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s",
                [self.schema, LEDGER_TABLE],
            )
            return cur.fetchone() is not None

        if exists():
            return
        with self._creating(cur, LEDGER_TABLE):
            if exists():  # another worker made it while this one waited: markers copied once
                return
            fields = [(n, t) for n, t in LEDGER]
            cur.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    self._ident(LEDGER_TABLE), ddl.columns(fields, not_null=("kind", "rows_out"))
                )
            )
            for record in self._luigi_markers(cur):
                self._write_ledger(cur, record)

    def _luigi_markers(self, cur: Cursor) -> list[LoadRecord]:
        """Loads recorded as ``{schema}.{table}/YYYY-MM/rows=N/source=S/clean=C`` in Luigi's
        ``table_updates`` (the zones as month 0000-00), as ledger rows."""
        cur.execute("SELECT to_regclass(%s)", [LUIGI_MARKERS])
        found = cur.fetchone()
        if not found or found[0] is None:
            return []
        cur.execute(
            sql.SQL("SELECT update_id, inserted FROM {} WHERE left(update_id, %s) = %s").format(
                sql.Identifier(LUIGI_MARKERS)
            ),
            [len(self.schema) + 1, self.schema + "."],
        )
        out = []
        for update_id, inserted in cur.fetchall():
            table, _, rest = update_id[len(self.schema) + 1 :].partition("/")
            ym, _, tail = rest.partition("/")
            parts = dict(p.split("=", 1) for p in tail.split("/") if "=" in p)
            rows = int(parts.get("rows", "-1"))
            zones = table == ZONES_TABLE
            color = None if zones else table.removesuffix("_trips")
            if rows < 0 or len(ym) != 7 or (not zones and color not in catalog.COLORS):
                continue
            out.append(
                LoadRecord(
                    ZONES if zones else MONTH,
                    table,
                    color,
                    None if zones else int(ym[:4]),
                    None if zones else int(ym[5:]),
                    None,
                    rows,
                    {},
                    parts.get("source", ""),
                    parts.get("clean", ""),
                    "before 0.1.0",
                    inserted,
                    0.0,
                )
            )
        return out

    def _write_ledger(self, cur: Cursor, record: LoadRecord) -> None:
        cur.execute(
            sql.SQL(
                "DELETE FROM {} WHERE kind = %s AND table_name = %s AND color IS NOT DISTINCT"
                " FROM %s AND year IS NOT DISTINCT FROM %s AND month IS NOT DISTINCT FROM %s"
            ).format(self._ident(LEDGER_TABLE)),
            [record.kind, record.table_name, record.color, record.year, record.month],
        )
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                self._ident(LEDGER_TABLE),
                sql.SQL(", ").join(sql.Identifier(c) for c in LEDGER_COLUMNS),
                sql.SQL(", ").join(sql.Placeholder() for _ in LEDGER_COLUMNS),
            ),
            record.values(),
        )

    def _records(self, where: sql.Composable, params: list[object]) -> list[LoadRecord]:
        with self._errors("reading the load ledger"), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("SELECT to_regclass(%s)", [self._ident(LEDGER_TABLE).as_string(conn)])
            found = cur.fetchone()
            if not found or found[0] is None:
                if not self._luigi_markers(cur):
                    return []
                self._ensure_ledger(cur)  # markers of an earlier version: carry them over
            cur.execute(
                sql.SQL("SELECT * FROM {} WHERE {}").format(self._ident(LEDGER_TABLE), where),
                params,
            )
            names = [d[0] for d in cur.description or ()]
            return [LoadRecord.from_row(dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    def loaded(self, key: MonthKey) -> LoadRecord | None:
        where = sql.SQL("kind = %s AND table_name = %s AND color = %s AND year = %s AND month = %s")
        found = self._records(
            where, [MONTH, self._table(key.color), key.color, key.year, key.month]
        )
        return latest(found).get(key)

    def loaded_months(self) -> dict[MonthKey, LoadRecord]:
        """Every month's ledger row of this schema's trips tables, in one query."""
        if self.table is not None:
            where = sql.SQL("kind = %s AND table_name = %s")
            return latest(self._records(where, [MONTH, self.table]))
        where = sql.SQL("kind = %s AND table_name = color || '_trips'")
        return latest(self._records(where, [MONTH]))

    def forget(self, key: MonthKey) -> bool:
        """Delete the month's ledger row, so the next run reloads it (replacing its rows)."""
        if self.loaded(key) is None:
            return False
        with self._errors("forgetting a load"), self.connect() as conn:
            cur = conn.cursor()
            cur.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE kind = %s AND table_name = %s AND color = %s"
                    " AND year = %s AND month = %s"
                ).format(self._ident(LEDGER_TABLE)),
                [MONTH, self._table(key.color), key.color, key.year, key.month],
            )
            conn.commit()
        return True

    # -- zones ----------------------------------------------------------------------------------
    def load_zones(self, table: pa.Table, sha256: str) -> LoadRecord:
        started = time.monotonic()
        stage = f"{STAGE_PREFIX}{ZONES_TABLE}"
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        buf.seek(0)
        with self._errors(f"load of {self.schema}.{ZONES_TABLE}"), self.connect() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            self._ensure_schema(cur)
            conn.autocommit = False
            try:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(stage)))
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                        self._ident(stage),
                        ddl.columns(ddl.fields_of(catalog.ZONES_SCHEMA)),
                        sql.Identifier("location_id"),
                    )
                )
                cur.copy_expert(
                    sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)")
                    .format(self._ident(stage))
                    .as_string(conn),
                    buf,
                )
                cur.execute("SELECT to_regclass(%s)", [self._ident(ZONES_TABLE).as_string(conn)])
                found = cur.fetchone()
                if found and found[0] is not None:
                    # Refilled in place, not dropped and replaced by the stage: views depend on
                    # it (taxi_zone_lookup, and any of the user's), and PostgreSQL refuses to
                    # drop a table a view depends on. DELETE, not TRUNCATE: readers keep the
                    # old rows until the commit instead of waiting for it.
                    names = sql.SQL(", ").join(
                        sql.Identifier(n) for n in catalog.ZONES_SCHEMA.names
                    )
                    cur.execute(sql.SQL("DELETE FROM {}").format(self._ident(ZONES_TABLE)))
                    cur.execute(
                        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                            self._ident(ZONES_TABLE), names, names, self._ident(stage)
                        )
                    )
                    cur.execute(sql.SQL("DROP TABLE {}").format(self._ident(stage)))
                else:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                            self._ident(stage), sql.Identifier(ZONES_TABLE)
                        )
                    )
                record = LoadRecord.for_zones(
                    ZONES_TABLE, table.num_rows, sha256, time.monotonic() - started
                )
                self._write_ledger(cur, record)
                self._refresh_views(cur, (catalog.zones_tlc_view(),))
                failpoint("zones.postgres")
                conn.commit()
            except BaseException:
                _rollback(conn)
                raise
        return record

    def zones_loaded(self) -> LoadRecord | None:
        found = self._records(sql.SQL("kind = %s"), [ZONES])
        return max(found, key=lambda r: r.loaded_at) if found else None

    def forget_zones(self) -> bool:
        if self.zones_loaded() is None:
            return False
        with self._errors("forgetting the zones load"), self.connect() as conn:
            cur = conn.cursor()
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE kind = %s").format(self._ident(LEDGER_TABLE)), [ZONES]
            )
            conn.commit()
        return True


def _rollback(conn: Connection) -> None:
    """Roll back after a failure, keeping the failure: on a connection that died (a server
    restart, a terminated backend) the rollback itself raises "connection already closed",
    which would replace the error that says why."""
    if conn.closed:
        return
    with contextlib.suppress(psycopg2.Error):
        conn.rollback()
