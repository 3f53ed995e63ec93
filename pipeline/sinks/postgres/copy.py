"""Filling a stage table with parallel binary COPY streams, through DuckDB's postgres extension.

DuckDB reads the clean parquet column by column and streams it to the server as binary tuples,
so the server does no text parsing (about 2x PostgreSQL's own CSV COPY) and the client never
holds the month in memory (benchmarks/README.md). The extension comes from its PyPI wheel
(``duckdb-extension-postgres_scanner``) and is loaded from that file: nothing is fetched at run
time. The statements here are DuckDB's, so names in them are quoted DuckDB's way.

``Copier`` starts DuckDB, the extension and the ATTACH on a thread of its own as the load
begins: until the COPY they are independent of the DDL on the load's psycopg2 connection, and
about as long.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
from psycopg2 import sql

from pipeline.domain.errors import PipelineError
from pipeline.domain.quality import QualityReport
from pipeline.sinks.base import CopyProgress
from pipeline.sinks.postgres.connection import PgConn
from pipeline.util.failpoints import failpoint

if TYPE_CHECKING:
    import duckdb


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


class Copier:
    """DuckDB attached to the server, made on a thread of its own from the moment this is
    created, so that the load's DDL runs meanwhile; ``copy`` waits for it. Closed on exit."""

    def __init__(self, pg: PgConn, schema: str):
        self.pg, self.schema = pg, schema
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="duckdb")
        self._con: Future[duckdb.DuckDBPyConnection] = self._pool.submit(attach, pg, schema)

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)  # the ATTACH, or the close that copy() started
        if self._con.exception() is None:  # else copy() raised it, or the load failed first
            self._con.result().close()  # a no-op if copy() closed it

    def copy(
        self,
        stage: str,
        columns: Sequence[str],
        files: Sequence[str],
        report: QualityReport,
        streams: int,
        progress: CopyProgress | None,
    ) -> int:
        """COPY the files into ``schema.stage`` as ``streams`` parallel binary COPYs; return
        the rows they report.

        One COPY keeps one server backend busy parsing tuples, which is the bottleneck (the
        client is idle half the time); two COPYs into the same table take 25-30 % less time on
        two cores (benchmarks/README.md). Each stream takes a contiguous range of each file's
        rows, which DuckDB reads by row group.
        """
        rows_of = {f["name"]: int(f["rows"]) for f in report["files"]}
        ranges = [
            (path, lo, hi)
            for path in files
            for lo, hi in split(rows_of.get(Path(path).name, 0), streams)
        ]
        target = f"pg.{_ident(self.schema)}.{_ident(stage)}"
        cols = ", ".join(_ident(name) for name in columns)
        insert = (
            f"INSERT INTO {target} ({cols}) SELECT {cols}"
            " FROM read_parquet(?, hive_partitioning = false, file_row_number = true)"
            " WHERE file_row_number >= ? AND file_row_number < ?"
        )

        def one(part: tuple[str, int, int]) -> int:
            cursor = con.cursor()  # a DuckDB connection of its own, and a PG backend
            try:
                path, lo, hi = part
                found = cursor.execute(insert, [path, lo, hi]).fetchone()
                return int(found[0]) if found else 0
            finally:
                cursor.close()

        con = self._con.result()
        try:
            with (
                CopyWatcher(self.pg, self.schema, stage, report["rows_out"], progress),
                ThreadPoolExecutor(streams, thread_name_prefix="copy") as pool,
            ):
                return sum(pool.map(one, ranges))
        finally:
            # DuckDB hangs up its backends on this thread while the caller builds the index.
            self._pool.submit(con.close)


def attach(pg: PgConn, schema: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB with the postgres extension loaded and the server attached as ``pg``.

    The ATTACH reads no catalog yet: DuckDB looks the stage up at the first INSERT, so the
    stage may be created after it (even the schema: a first load creates it meanwhile).
    """
    import duckdb

    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            # DuckDB checks an extension's signature by hashing its 40 MB: 0.15-0.45 s per
            # load, the largest fixed cost of a month (benchmarks/README.md). The signature
            # guards extensions fetched at run time, which this connection never does
            # (autoinstall and autoload are off, and it loads one file by its path). This
            # one comes from the wheel pip installed beside DuckDB's own library, which
            # nothing checks either: whoever can replace one can replace the other.
            "allow_unsigned_extensions": True,
        }
    )
    try:
        con.execute("SET enable_progress_bar = false")  # a session setting, not a config one
        # One thread per query: the parallelism is the streams, each a query on a thread of
        # its own. With DuckDB's default (a thread per core) every stream's query also runs
        # on the other cores, and two streams' four threads and their two server backends
        # fight over two cores: 1.34M rows took 1.8 s of client CPU instead of 1.1 s, and
        # the load 8 % longer (benchmarks/README.md). One thread reads and encodes about
        # 1.7M rows/s, more than a server backend parses (~0.9M rows/s).
        con.execute("SET threads = 1")
        con.load_extension(str(postgres_extension_path()))
        opts = {
            "HOST": pg.host,
            "PORT": str(pg.port) if pg.port else None,
            "DATABASE": pg.database,
            "USER": pg.user,
            "PASSWORD": pg.password,
        }
        # A secret, not a connection string, so the password is in no statement text that
        # DuckDB might echo in an error.
        secret = ", ".join(f"{k} {_literal(v)}" for k, v in opts.items() if v)
        con.execute(
            f"CREATE TEMPORARY SECRET tlc_pg (TYPE postgres{', ' if secret else ''}{secret})"
        )
        # The connection string holds libpq's other settings (no secret: DuckDB quotes it in
        # its errors), merged with the secret's.
        options = " ".join(f"{k}={v}" for k, v in pg.options().items())
        con.execute(
            f"ATTACH {_literal(options)} AS pg (TYPE postgres, SECRET tlc_pg, "
            f"SCHEMA {_literal(schema)})"
        )
    except BaseException:
        con.close()
        raise
    return con


def split(rows: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) row ranges covering 0..rows in at most ``parts`` near-equal pieces."""
    parts = max(1, min(parts, rows))
    bounds = [rows * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _ident(name: str) -> str:
    """A name in DuckDB SQL (DuckDB's Python API has no quoting helper)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class CopyWatcher:
    """Reports a running COPY's progress from pg_stat_progress_copy (PostgreSQL 14+), on its
    own connection, so the visualizer shows "COPY 800,000 of 1,342,377 rows"."""

    def __init__(
        self, pg: PgConn, schema: str, table: str, expected: int, progress: CopyProgress | None
    ):
        self.pg, self.schema, self.table = pg, schema, table
        self.expected, self.progress = expected, progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copy-progress", daemon=True)

    def __enter__(self) -> CopyWatcher:
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
            name = sql.Identifier(self.schema, self.table).as_string(conn)
            wait = 0.1  # the first look soon, then once a second
            while not self._stop.wait(wait):
                wait = 1.0
                cur.execute(
                    "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy"
                    " WHERE relid = to_regclass(%s)",
                    [name],
                )
                found = cur.fetchone()
                done = int(found[0]) if found else 0
                if self.progress:
                    self.progress(done, self.expected)
                if done:
                    failpoint("postgres.copying")  # parks this thread; the COPY goes on
        except psycopg2.Error:
            pass  # e.g. PostgreSQL 13 has no pg_stat_progress_copy
        finally:
            conn.close()
