"""The embedded warehouse: one DuckDB file, one table per colour, ``taxi_zones``, and the
``_pipeline_loads`` marker table that ``LoadDuckDB.complete()`` reads.

DuckDB allows one writing process per file. Connections are opened per operation and closed
at once, so a worker holds the file lock only while it loads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.sinks.base import clean_sha256
from pipeline.util.failpoints import failpoint

if TYPE_CHECKING:
    import duckdb

MARKER_TABLE = "_pipeline_loads"
ZONES_TABLE = "taxi_zones"

_DUCK_TYPES = {
    pa.timestamp("us"): "TIMESTAMP",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
}


def quote_ident(name: str) -> str:
    """SQL-standard identifier quoting; DuckDB's Python API has no helper for it."""
    return '"' + name.replace('"', '""') + '"'


def trips_table(color: str) -> str:
    if color not in catalog.COLORS:
        raise ValueError(f"unknown colour {color!r}")
    return f"{color}_trips"


def table_ddl(name: str, schema: pa.Schema) -> str:
    cols = ", ".join(f"{quote_ident(f.name)} {_DUCK_TYPES[f.type]}" for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(name)} ({cols})"


class DuckDBWarehouse:
    def __init__(self, path: Path, lock_timeout: float = 60.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            yield con
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        # DuckDB lets one process write a file, and no other process read it meanwhile. Another
        # worker's load takes seconds, so wait for it, up to lock_timeout, then say who holds it.
        import duckdb  # here, not at the top: download and clean workers never pay its 56 MB

        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise PipelineError(
                        f"DuckDB {self.path}: still locked by another process after "
                        f"{self.lock_timeout:.0f} s ({e}). Close that connection and rerun."
                    ) from None
                time.sleep(0.2)

    def _ensure_marker(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(MARKER_TABLE)} ("
            " color VARCHAR, year INTEGER, month INTEGER, rows BIGINT,"
            " source_sha256 VARCHAR, clean_sha256 VARCHAR, loaded_at TIMESTAMP,"
            " PRIMARY KEY (color, year, month))"
        )

    def replace_month(
        self,
        color: str,
        year: int,
        month: int,
        files: list[Path],
        quality: dict[str, Any],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        table = quote_ident(trips_table(color))
        start, end = catalog.month_bounds(year, month)
        expected = quality["rows_out"]
        manifest = quality.get("source_manifest") or {}
        with self.connect() as con:
            con.execute(table_ddl(trips_table(color), catalog.arrow_schema(color)))
            self._ensure_marker(con)
            con.begin()
            try:
                con.execute(
                    f"DELETE FROM {table} WHERE pickup_datetime >= ? AND pickup_datetime < ?",
                    [start, end],
                )
                # hive_partitioning off: the lake path has year=/month= folders, which DuckDB
                # would otherwise add as two extra columns.
                con.execute(
                    f"INSERT INTO {table} BY NAME"
                    " SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [[str(f) for f in files]],
                )
                failpoint("duckdb.loading")
                (rows,) = con.execute(
                    f"SELECT count(*) FROM {table}"
                    " WHERE pickup_datetime >= ? AND pickup_datetime < ?",
                    [start, end],
                ).fetchone()
                if rows != expected:
                    raise PipelineError(
                        f"DuckDB {self.path}: {color} {year:04d}-{month:02d} has {rows} rows "
                        f"after the load, the clean month has {expected}; rolled back"
                    )
                con.execute(
                    f"INSERT OR REPLACE INTO {quote_ident(MARKER_TABLE)} VALUES (?,?,?,?,?,?,?)",
                    [
                        color,
                        year,
                        month,
                        rows,
                        manifest.get("sha256"),
                        clean_sha256(quality),
                        dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    ],
                )
                failpoint("duckdb.before_commit")
                con.commit()
            except BaseException:
                con.rollback()
                raise
        return rows

    def loaded(self, color: str, year: int, month: int) -> dict[str, Any] | None:
        return self._markers(
            "WHERE color = ? AND year = ? AND month = ?", [color, year, month]
        ).get((color, year, month))

    def loaded_months(self) -> dict[tuple[str, int, int], dict[str, Any]]:
        """Every load marker, in one read (a backfill's bulk completion check)."""
        return self._markers("", [])

    def _markers(self, where: str, params: list[Any]) -> dict[tuple[str, int, int], dict[str, Any]]:
        if not self.path.exists():
            return {}
        with self.connect(read_only=True) as con:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                [MARKER_TABLE],
            ).fetchone()[0]
            if not exists:
                return {}
            cur = con.execute(f"SELECT * FROM {quote_ident(MARKER_TABLE)} {where}", params)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return {(r["color"], r["year"], r["month"]): r for r in rows}

    def forget(self, color: str, year: int, month: int) -> bool:
        """Delete the load marker, so the next run reloads the month (it replaces the rows)."""
        if self.loaded(color, year, month) is None:
            return False
        with self.connect() as con:
            con.execute(
                f"DELETE FROM {quote_ident(MARKER_TABLE)}"
                " WHERE color = ? AND year = ? AND month = ?",
                [color, year, month],
            )
        return True

    def replace_zones(self, table: pa.Table, sha256: str) -> int:
        with self.connect() as con:
            self._ensure_marker(con)
            con.begin()
            try:
                con.register("zones_in", table)
                con.execute(
                    f"CREATE OR REPLACE TABLE {quote_ident(ZONES_TABLE)} AS SELECT * FROM zones_in"
                )
                con.execute(
                    f"INSERT OR REPLACE INTO {quote_ident(MARKER_TABLE)} VALUES (?,?,?,?,?,?,?)",
                    [
                        ZONES_TABLE,
                        0,
                        0,
                        table.num_rows,
                        sha256,
                        sha256,
                        dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    ],
                )
                failpoint("zones.duckdb")
                con.commit()
            except BaseException:
                con.rollback()
                raise
            finally:
                con.unregister("zones_in")
        return table.num_rows

    def zones_loaded(self) -> dict[str, Any] | None:
        return self.loaded(ZONES_TABLE, 0, 0)
