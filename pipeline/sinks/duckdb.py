"""The embedded warehouse: one DuckDB file, one table per colour, ``taxi_zones``, and the load
ledger ``_pipeline_loads`` that ``LoadDuckDB.complete()`` reads. After each load, the views with
the TLC's names (``{color}_tripdata``, ``taxi_zone_lookup``: ``catalog.tlc_view``) are made
again, so the course's SQL runs on the tables.

DuckDB allows one writing process per file. Connections are opened per operation and closed
at once, so a worker holds the file lock only while it loads.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

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
from pipeline.util.failpoints import failpoint

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

ZONES_TABLE = catalog.ZONES_TABLE

_DUCK_TYPES = {
    pa.timestamp("us"): "TIMESTAMP",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
}


def ident(name: str) -> str:
    """An identifier, quoted the SQL-standard way DuckDB uses (its Python API has no helper).
    Every name in this module's SQL goes through here."""
    return '"' + name.replace('"', '""') + '"'


def table_ddl(name: str, columns: Sequence[tuple[str, pa.DataType]]) -> str:
    cols = ", ".join(f"{ident(n)} {_DUCK_TYPES[t]}" for n, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {ident(name)} ({cols})"


def view_ddl(view: catalog.TlcView) -> str:
    """The view with the TLC's names. DuckDB matches names case-insensitively, so the course's
    ``PULocationID`` works quoted or not; the quotes keep the TLC's spelling in the output."""
    cols = ", ".join(f"{ident(column)} AS {ident(name)}" for column, name in view.columns)
    return f"CREATE OR REPLACE VIEW {ident(view.name)} AS SELECT {cols} FROM {ident(view.table)}"


# DuckDB keeps every block a load writes in its buffer pool until the pool is full, and the
# pool's default size is 80 % of the machine's RAM: an insert of a 20M-row month peaked at
# 1 GB of RSS, growing with the month. Capping the pool makes DuckDB evict the blocks it has
# already written to the file, so memory stays flat (benchmarks/README.md, "LoadDuckDB").
# Insertion order is not kept: with a cap, keeping it makes DuckDB buffer batches to reorder
# them, which spills and doubled the insert's time; a table's row order means nothing to SQL.
DEFAULT_MEMORY_LIMIT = "160MB"
_MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


class DuckDBWarehouse:
    def __init__(
        self, path: Path, lock_timeout: float = 60.0, memory_limit: str = DEFAULT_MEMORY_LIMIT
    ):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        memory_limit = memory_limit.strip()
        if memory_limit and not _MEMORY_LIMIT.fullmatch(memory_limit):
            raise PipelineError(
                f"[duckdb] memory_limit = {memory_limit!r}: not a size like '160MB' or '1GB' "
                "(empty: DuckDB's own default, 80 % of RAM)"
            )
        self.memory_limit = memory_limit

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    @contextlib.contextmanager
    def connect(
        self, read_only: bool = False, waited: list[bool] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, closed afterwards. Any DuckDB error in the block (a file that is not
        a database, a full disk, a parquet file DuckDB cannot read, a table whose columns are
        not the catalog's) is one line naming the file, not a traceback: out of ``complete()``
        as much as out of a load."""
        import duckdb

        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = self._open(read_only, waited)
        except duckdb.Error as e:
            raise PipelineError(f"DuckDB {self.path}: cannot open it: {_first_line(e)}") from None
        try:
            yield con
        except duckdb.Error as e:
            raise PipelineError(f"DuckDB {self.path}: {_first_line(e)}") from None
        finally:
            con.close()

    def _open(self, read_only: bool, waited: list[bool] | None = None) -> duckdb.DuckDBPyConnection:
        # DuckDB lets one process write a file, and no other process read it meanwhile. Another
        # worker's load takes seconds, so wait for it, up to lock_timeout, then say who holds it.
        import duckdb  # here, not at the top: download and clean workers never pay its 56 MB

        deadline = time.monotonic() + self.lock_timeout
        waiting = False
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise
                if not waiting:
                    waiting = True
                    if waited is not None:
                        waited.append(True)
                    log.info(
                        "DuckDB %s: another process holds it; waiting up to %.0f s",
                        self.path,
                        self.lock_timeout,
                    )
                if time.monotonic() >= deadline:
                    raise PipelineError(
                        f"DuckDB {self.path}: still locked by another process after "
                        f"{self.lock_timeout:.0f} s ({e}). Close that connection and rerun."
                    ) from None
                time.sleep(0.2)
                continue
            if not read_only and self.memory_limit:
                # Checked against _MEMORY_LIMIT above: DuckDB's SET takes no parameters.
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
                con.execute("SET preserve_insertion_order = false")
            return con

    @contextlib.contextmanager
    def _transaction(
        self, views: Sequence[catalog.TlcView] = (), waited: list[bool] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; then, on the same connection, ``views`` made again. ``waited``
        gets True when the file was held by another process first."""
        with self.connect(waited=waited) as con:
            self._ensure_ledger(con)
            con.begin()
            try:
                yield con
                con.commit()
            except BaseException:
                con.rollback()
                raise
            self._refresh_views(con, views)

    def _refresh_views(
        self, con: duckdb.DuckDBPyConnection, views: Sequence[catalog.TlcView]
    ) -> None:
        """CREATE OR REPLACE each view, after the load committed. DuckDB aborts a transaction at
        its first error, so a view that cannot be made (its name taken by a table of the
        user's, a table older than the catalog) would take the load down with it inside the
        transaction; here it costs only the view, with one warning line."""
        import duckdb

        for view in views:
            try:
                con.execute(view_ddl(view))
            except duckdb.Error as e:
                log.warning(
                    "DuckDB %s: view %s (the TLC's names over %s) not refreshed, the load "
                    "itself committed: %s",
                    self.path,
                    view.name,
                    view.table,
                    " ".join(str(e).split()),
                )

    # -- the ledger ---------------------------------------------------------------------------
    def _ensure_ledger(self, con: duckdb.DuckDBPyConnection) -> None:
        columns = self._columns(con, LEDGER_TABLE)
        if columns and "kind" not in columns:
            self._migrate_ledger(con)
        con.execute(table_ddl(LEDGER_TABLE, LEDGER))

    @staticmethod
    def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [r[0] for r in rows]

    def _migrate_ledger(self, con: duckdb.DuckDBPyConnection) -> None:
        """The first ledger (before 0.1.0's contract) had (color, year, month, rows,
        source_sha256, clean_sha256, loaded_at), the zones as the fake month
        ('taxi_zones', 0, 0). Carry its rows over, so loaded months stay loaded."""
        old = f"{LEDGER_TABLE}_v0"
        con.begin()
        try:
            con.execute(f"ALTER TABLE {ident(LEDGER_TABLE)} RENAME TO {ident(old)}")
            con.execute(table_ddl(LEDGER_TABLE, LEDGER))
            con.execute(
                f"INSERT INTO {ident(LEDGER_TABLE)} (kind, table_name, color, year, month,"
                " rows_in, rows_out, rows_dropped, source_sha256, clean_sha256, code_version,"
                " loaded_at, seconds, load_id)"
                " SELECT CASE WHEN color = ? THEN ? ELSE ? END,"
                " CASE WHEN color = ? THEN color ELSE color || '_trips' END,"
                " CASE WHEN color = ? THEN NULL ELSE color END,"
                " CASE WHEN color = ? THEN NULL ELSE year END,"
                " CASE WHEN color = ? THEN NULL ELSE month END,"
                " NULL, rows, '{}', source_sha256, clean_sha256, 'before 0.1.0', loaded_at, 0, ''"
                f" FROM {ident(old)}",
                [ZONES_TABLE, ZONES, MONTH, ZONES_TABLE, ZONES_TABLE, ZONES_TABLE, ZONES_TABLE],
            )
            con.execute(f"DROP TABLE {ident(old)}")
            con.commit()
        except BaseException:
            con.rollback()
            raise

    @staticmethod
    def _write_ledger(con: duckdb.DuckDBPyConnection, record: LoadRecord) -> None:
        con.execute(
            f"DELETE FROM {ident(LEDGER_TABLE)} WHERE kind = ? AND table_name = ?"
            " AND color IS NOT DISTINCT FROM ? AND year IS NOT DISTINCT FROM ?"
            " AND month IS NOT DISTINCT FROM ?",
            [record.kind, record.table_name, record.color, record.year, record.month],
        )
        cols = ", ".join(ident(c) for c in LEDGER_COLUMNS)
        marks = ", ".join("?" for _ in LEDGER_COLUMNS)
        con.execute(f"INSERT INTO {ident(LEDGER_TABLE)} ({cols}) VALUES ({marks})", record.values())

    def _records(self, where: str, params: list[object]) -> list[LoadRecord]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            columns = self._columns(con, LEDGER_TABLE)
            if "kind" in columns:
                return self._read_records(con, where, params)
        if not columns:
            return []
        with self._transaction():  # a first-version ledger: migrated once, then read
            pass
        return self._records(where, params)

    # -- the month ----------------------------------------------------------------------------
    def replace_month(
        self, report: QualityReport, files: Sequence[str], progress: CopyProgress | None = None
    ) -> LoadRecord:
        import duckdb

        started = time.monotonic()
        key = MonthKey(report["color"], report["year"], report["month"])
        table = catalog.trips_table(key.color)
        start, end = key.bounds()
        expected = report["rows_out"]
        waited: list[bool] = []
        with self._transaction(views=(catalog.tlc_view(key.color),), waited=waited) as con:
            # A load that had to wait for the file (another process writing it) and then finds
            # this same clean month in the ledger has nothing to do: the other process loaded
            # it meanwhile (Luigi ran this task because the month was not loaded when it
            # looked). A load that got the file at once replaces the month as asked.
            done = self._month_record(con, key) if waited else None
            if done is not None and done.matches(report):
                log.info("DuckDB %s: %s was loaded meanwhile; nothing to do", self.path, key.label)
                return done
            con.execute(table_ddl(table, _columns_of(key.color)))
            con.execute(
                f"DELETE FROM {ident(table)} WHERE pickup_datetime >= ? AND pickup_datetime < ?",
                [start, end],
            )
            # hive_partitioning off: the lake path has year=/month= folders, which DuckDB
            # would otherwise add as two extra columns.
            try:
                con.execute(
                    f"INSERT INTO {ident(table)} BY NAME"
                    " SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [list(files)],
                )
            except duckdb.OutOfMemoryException as e:
                raise PipelineError(
                    f"DuckDB {self.path}: {key.label} did not fit in [duckdb] memory_limit = "
                    f"{self.memory_limit!r}; raise it (nothing was loaded): {_first_line(e)}"
                ) from None
            failpoint("duckdb.loading")
            (rows,) = con.execute(
                f"SELECT count(*) FROM {ident(table)}"
                " WHERE pickup_datetime >= ? AND pickup_datetime < ?",
                [start, end],
            ).fetchone() or (0,)
            if rows != expected:
                raise PipelineError(
                    f"DuckDB {self.path}: {key.label} has {rows} rows after the load, the clean "
                    f"month has {expected}; rolled back"
                )
            record = LoadRecord.for_month(report, table, rows, time.monotonic() - started)
            self._write_ledger(con, record)
            failpoint("duckdb.before_commit")
        if progress:
            progress(rows, expected)
        return record

    @staticmethod
    def _read_records(
        con: duckdb.DuckDBPyConnection, where: str, params: list[object]
    ) -> list[LoadRecord]:
        cur = con.execute(f"SELECT * FROM {ident(LEDGER_TABLE)} {where}", params)
        names = [d[0] for d in cur.description or ()]
        return [LoadRecord.from_row(dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    def _month_record(self, con: duckdb.DuckDBPyConnection, key: MonthKey) -> LoadRecord | None:
        where = "WHERE kind = ? AND color = ? AND year = ? AND month = ?"
        found = self._read_records(con, where, [MONTH, key.color, key.year, key.month])
        return latest(found).get(key)

    def loaded(self, key: MonthKey) -> LoadRecord | None:
        found = self._records(
            "WHERE kind = ? AND color = ? AND year = ? AND month = ?",
            [MONTH, key.color, key.year, key.month],
        )
        return latest(found).get(key)

    def loaded_months(self) -> dict[MonthKey, LoadRecord]:
        """Every month's ledger row, in one read (a backfill's bulk completion check)."""
        return latest(self._records("WHERE kind = ?", [MONTH]))

    def forget(self, key: MonthKey) -> bool:
        """Delete the month's ledger row, so the next run reloads it (replacing its rows)."""
        if self.loaded(key) is None:
            return False
        with self._transaction() as con:
            con.execute(
                f"DELETE FROM {ident(LEDGER_TABLE)}"
                " WHERE kind = ? AND color = ? AND year = ? AND month = ?",
                [MONTH, key.color, key.year, key.month],
            )
        return True

    # -- zones --------------------------------------------------------------------------------
    def load_zones(self, table: pa.Table, sha256: str) -> LoadRecord:
        started = time.monotonic()
        with self._transaction(views=(catalog.zones_tlc_view(),)) as con:
            con.register("zones_in", table)
            try:
                replace = f"CREATE OR REPLACE TABLE {ident(ZONES_TABLE)} AS SELECT * FROM zones_in"
                con.execute(replace)
                seconds = time.monotonic() - started
                record = LoadRecord.for_zones(ZONES_TABLE, table.num_rows, sha256, seconds)
                self._write_ledger(con, record)
                failpoint("zones.duckdb")
            finally:
                con.unregister("zones_in")
        return record

    def zones_loaded(self) -> LoadRecord | None:
        found = self._records("WHERE kind = ?", [ZONES])
        return max(found, key=lambda r: r.loaded_at) if found else None

    def forget_zones(self) -> bool:
        if self.zones_loaded() is None:
            return False
        with self._transaction() as con:
            con.execute(f"DELETE FROM {ident(LEDGER_TABLE)} WHERE kind = ?", [ZONES])
        return True


def _columns_of(color: str) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in catalog.arrow_schema(color)]


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
