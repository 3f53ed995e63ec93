"""LoadPostgres's load function against the course's pandas ``to_sql``, dlt and a server-side COPY.

    .venv/bin/python -m benchmarks.postgres                  # 1.37M and 7.7M rows, 3 runs
    .venv/bin/python -m benchmarks.postgres --rows 1369769 --runs 5
    .venv/bin/python -m benchmarks.postgres --smoke          # 50k rows, 1 run, no goal (CI)

Connects with the PG* variables if set, else to 127.0.0.1:5432 as postgres. It makes a
database ``tlc_bench_<pid>`` and drops it afterwards. The server-side COPY reads a file on the
server's disk, so the server must share this machine and the user must be allowed to run
``COPY ... FROM/TO`` a file (a superuser, or a member of pg_read_server_files and
pg_write_server_files).

Four loaders, all into a fresh logged table:

- **pipeline**: ``pipeline.orchestration.loading.load_month`` with
  ``PostgresWarehouse``, in a fresh process per run. It does the whole LoadPostgres job:
  stage, binary COPY, count check, CHECK constraint, BRIN index, and the swap with its ledger
  row. The schema is dropped between runs, so every run is a first load.
- **course**: the course's ``pq_process_simple.py`` way. pandas reads the raw file, then
  ``to_sql`` writes it in 100k-row chunks through SQLAlchemy and psycopg2. It runs on a
  300k-row month, because it scales linearly and a full month takes minutes. Its rows/s is
  compared with ours.
- **dlt** (1.31, ``dlt[postgres]`` with ``adbc-driver-postgresql``): a ``@dlt.resource``
  yielding the Arrow record batches of the same clean ``part-*.parquet`` files, run into the
  ``postgres`` destination with ``loader_file_format="parquet"``: dlt writes the batches to a
  parquet load file, passes it through its normaliser untouched and loads it with ADBC's
  ``adbc_ingest`` (a binary COPY). That is dlt's fastest way into PostgreSQL; without the ADBC
  driver dlt only warns and loads the Arrow data as CSV instead. The child checks that every
  load job of the table was a parquet job and sums the rows dlt's ADBC job logged; the parent
  counts the table. Its pipelines dir is a temporary folder and its dataset (schema) is
  dropped after each run. Fresh process per run, in alternation with the pipeline's.
- **server COPY**: ``COPY t FROM '/file' (FORMAT binary)`` of the same rows into an unindexed
  table. No client work at all: the practical limit.

Reported: the time of the call itself (in-call; for the server COPY it is all there is), the
whole process's wall time, and the process's own peak RSS (VmHWM). Goal (issue 15): our
pipeline loads at least twice dlt's rows per second, whole process against whole process
(process wall time, imports included). The script exits 1 when that is missed at the largest
size (not with --smoke, whose month is too small for the ratio to mean anything).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import goal, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]

SIZES = (1_369_769, 7_696_617)
COURSE_ROWS = 300_000
SMOKE_ROWS, SMOKE_COURSE_ROWS = 50_000, 10_000
DLT_DATASET = "dlt_bench"
DLT_GOAL = 2.0  # our rows/s over dlt's, whole process to whole process


def admin_conn():
    import psycopg2

    if any(os.environ.get(v) for v in ("PGHOST", "PGPORT", "PGUSER")):
        return psycopg2.connect(dbname="postgres")
    return psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


def conn_args(db: str) -> dict[str, object]:
    if any(os.environ.get(v) for v in ("PGHOST", "PGPORT", "PGUSER")):
        return {"database": db}
    return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": db}


# --- children ---------------------------------------------------------------------------------
def child_pipeline(lake_root: str, db: str, schema: str) -> dict[str, float]:
    from pipeline.domain.months import MonthKey
    from pipeline.lake.lake import local
    from pipeline.orchestration.loading import load_month
    from pipeline.sinks.postgres import PgConn, PostgresWarehouse

    c = conn_args(db)
    wh = PostgresWarehouse(
        PgConn.resolve(c.get("host"), c.get("port"), c["database"], c.get("user")), schema
    )
    t0 = time.perf_counter()
    rows = load_month(local(lake_root), MonthKey("yellow", 2021, 1), wh, "postgres").rows_out
    return {"rows": rows, "inner_s": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}


def child_course(raw: str, db: str, table: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import URL, create_engine

    c = conn_args(db)
    url = URL.create(
        "postgresql+psycopg2",
        username=c.get("user"),  # type: ignore[arg-type]
        host=c.get("host"),  # type: ignore[arg-type]
        port=c.get("port"),  # type: ignore[arg-type]
        database=db,
    )
    t0 = time.perf_counter()
    engine = create_engine(url)
    df = pd.read_parquet(raw)
    df.head(0).to_sql(table, engine, if_exists="replace", index=False)
    for start in range(0, len(df), 100_000):
        df.iloc[start : start + 100_000].to_sql(table, engine, if_exists="append", index=False)
    return {"rows": len(df), "inner_s": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}


def child_dlt(lake_root: str, db: str, state_dir: str) -> dict[str, float]:
    """dlt, Arrow batches of the clean files into the postgres destination as parquet (ADBC)."""
    # dlt's own files (pipeline state, load packages, its data dir) go to the temporary folder;
    # no telemetry; INFO so that its ADBC job's log line ("N rows copied from ...") is emitted.
    os.environ.update(
        RUNTIME__DLTHUB_TELEMETRY="false",
        RUNTIME__LOG_LEVEL="INFO",
        DLT_DATA_DIR=state_dir,
        DLT_PROJECT_DIR=state_dir,
    )
    adbc_rows: list[int] = []

    class AdbcLog(logging.Handler):
        # dlt logs through the "dlt" logger and reuses a handler already on it (so nothing
        # goes to stderr); dlt/destinations/_adbc_jobs.py logs "<rows> rows copied from ..."
        def emit(self, record: logging.LogRecord) -> None:
            if record.module == "_adbc_jobs" and " rows copied from " in record.getMessage():
                adbc_rows.append(int(record.getMessage().split()[0]))

    logging.getLogger("dlt").addHandler(AdbcLog())

    import dlt
    import pyarrow.parquet as pq
    from dlt.common.runtime import run_context

    # dlt writes an ".anonymous_id" to its global dir even with telemetry off, and as root
    # that dir is /var/dlt whatever DLT_DATA_DIR says; the run context lets it be set
    run_context.active()._global_dir = state_dir  # type: ignore[attr-defined]

    files = sorted(Path(lake_root).rglob("part-*.parquet"))
    c = conn_args(db)
    credentials = {
        "database": db,
        "host": c.get("host") or os.environ.get("PGHOST", "localhost"),
        "port": int(c.get("port") or os.environ.get("PGPORT", "5432")),  # type: ignore[call-overload]
        "username": c.get("user") or os.environ.get("PGUSER", "postgres"),
        # dlt insists on a password; with trust auth the server never asks for it
        "password": os.environ.get("PGPASSWORD", "unused"),
    }
    # timestamps without a zone, as ours; one dict each (dlt writes the column's name into it)
    naive = {"data_type": "timestamp", "timezone": False}
    columns = {col: dict(naive) for col in ("pickup_datetime", "dropoff_datetime")}

    @dlt.resource(
        name="yellow_trips", write_disposition="replace", file_format="parquet", columns=columns
    )
    def trips():  # type: ignore[no-untyped-def]
        for f in files:
            yield from pq.ParquetFile(f).iter_batches()

    t0 = time.perf_counter()
    pipe = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=state_dir,
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name=DLT_DATASET,
    )
    info = pipe.run(trips(), loader_file_format="parquet")
    inner = time.perf_counter() - t0
    formats = {
        job.job_file_info.file_format
        for package in info.load_packages
        for job in package.jobs["completed_jobs"]
        if job.job_file_info.table_name == "yellow_trips"
    }
    if formats != {"parquet"} or not adbc_rows:
        raise SystemExit(f"dlt did not load through ADBC: jobs {formats}, ADBC log {adbc_rows}")
    return {"rows": sum(adbc_rows), "inner_s": inner, "rss_mb": peak_rss_mb()}


CHILDREN = {"pipeline": child_pipeline, "course": child_course, "dlt": child_dlt}


# --- parent -----------------------------------------------------------------------------------
def in_child(*args: str) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.postgres", "--child", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, _ = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child {args[0]} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def query(db: str, sql: str) -> object:
    import psycopg2

    conn = psycopg2.connect(
        **{("dbname" if k == "database" else k): v for k, v in conn_args(db).items()}
    )
    cur = conn.cursor()
    cur.execute(sql)
    (value,) = cur.fetchone() or (None,)
    conn.close()
    return value


def execute(db: str, sql: str) -> float:
    import psycopg2

    conn = psycopg2.connect(
        **{("dbname" if k == "database" else k): v for k, v in conn_args(db).items()}
    )
    conn.autocommit = True
    t0 = time.perf_counter()
    conn.cursor().execute(sql)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def dump_rows(db: str, table: str, dest: Path) -> None:
    """Write the table's rows as a binary COPY file the server can read back."""
    import psycopg2

    conn = psycopg2.connect(
        **{("dbname" if k == "database" else k): v for k, v in conn_args(db).items()}
    )
    with open(dest, "wb") as f:
        conn.cursor().copy_expert(f"COPY (SELECT * FROM {table}) TO STDOUT (FORMAT binary)", f)
    conn.close()
    dest.chmod(0o644)


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--course-rows", type=int, default=COURSE_ROWS)
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_ROWS:,} rows (the course {SMOKE_COURSE_ROWS:,}), one run, goal not "
        "checked: that every loader still works",
    )
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, a, db, b = args.child
        print(json.dumps(CHILDREN[which](a, db, b)))
        return
    if args.smoke:
        args.rows, args.runs, args.course_rows = [SMOKE_ROWS], 1, SMOKE_COURSE_ROWS

    from pipeline.domain.months import MonthKey
    from pipeline.extract.sources import RawInput, open_source
    from pipeline.lake.lake import local
    from pipeline.transform.clean import clean_month
    from tools.synthetic import write_yellow_month

    db = f"tlc_bench_{os.getpid()}"
    admin = admin_conn()
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db}"')
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| rows | loader | in-call s | process wall s | rows/s (in-call) | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    summary = []
    dlt_ratio: dict[int, float] = {}  # rows asked -> our whole-process rows/s over dlt's
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
            tmpd = Path(tmp)
            os.chmod(tmpd, 0o755)  # the server process reads the COPY file from here

            # the course, on a slice
            raw = write_yellow_month(tmpd / "course.parquet", args.course_rows)
            course = [in_child("course", str(raw), db, "yellow_course") for _ in range(args.runs)]
            course_rate = args.course_rows / median(course, "inner_s")
            print(
                f"| {args.course_rows:,} | course: pandas + to_sql (100k chunks) "
                f"| {median(course, 'inner_s'):.2f} | {median(course, 'wall_s'):.2f} "
                f"| {course_rate:,.0f} | {median(course, 'rss_mb'):.0f} |",
                flush=True,
            )

            for rows in args.rows or SIZES:
                raw = write_yellow_month(tmpd / f"yellow_tripdata_2021-01.{rows}.parquet", rows)
                clean_dir = tmpd / f"lake-{rows}"
                source = open_source(RawInput.local(raw), "parquet")
                quality = clean_month(source, MonthKey("yellow", 2021, 1), local(clean_dir))
                raw.unlink()
                n = quality["rows_out"]
                ours, dlts = [], []
                for run in range(args.runs):
                    # alternate which goes first, so neither always meets a warmer server
                    for which in ("pipeline", "dlt") if run % 2 == 0 else ("dlt", "pipeline"):
                        if which == "pipeline":
                            execute(db, f"DROP SCHEMA IF EXISTS bench_{rows} CASCADE")
                            r = in_child("pipeline", str(clean_dir), db, f"bench_{rows}")
                            if r["rows"] != n:
                                raise SystemExit(f"loaded {r['rows']} rows, expected {n}")
                            ours.append(r)
                            continue
                        state = tmpd / f"dlt-{rows}-{run}"
                        state.mkdir()
                        r = in_child("dlt", str(clean_dir), db, str(state))
                        counted = query(db, f"SELECT count(*) FROM {DLT_DATASET}.yellow_trips")
                        execute(db, f"DROP SCHEMA IF EXISTS {DLT_DATASET} CASCADE")
                        execute(db, f"DROP SCHEMA IF EXISTS {DLT_DATASET}_staging CASCADE")
                        shutil.rmtree(state)
                        if r["rows"] != n or counted != n:
                            raise SystemExit(
                                f"dlt loaded {r['rows']} rows (table: {counted}), expected {n}"
                            )
                        dlts.append(r)

                # the practical limit: the same rows, server-side binary COPY into a plain table
                dump = tmpd / f"rows-{rows}.pgbin"
                dump_rows(db, f"bench_{rows}.yellow_trips", dump)
                server = []
                for _ in range(args.runs):
                    execute(db, "DROP TABLE IF EXISTS copy_limit")
                    execute(
                        db,
                        f"CREATE TABLE copy_limit (LIKE bench_{rows}.yellow_trips)",
                    )
                    server.append(
                        {"inner_s": execute(db, f"COPY copy_limit FROM '{dump}' (FORMAT binary)")}
                    )
                dump.unlink()
                execute(db, "DROP TABLE IF EXISTS copy_limit")
                execute(db, f"DROP SCHEMA IF EXISTS bench_{rows} CASCADE")

                ours_s, server_s = median(ours, "inner_s"), median(server, "inner_s")
                print(
                    f"| {n:,} | server-side COPY FROM file, binary | {server_s:.2f} | — "
                    f"| {n / server_s:,.0f} | — |"
                )
                print(
                    f"| {n:,} | dlt {dlt_version()}: Arrow batches, parquet, ADBC "
                    f"| {median(dlts, 'inner_s'):.2f} | {median(dlts, 'wall_s'):.2f} "
                    f"| {n / median(dlts, 'inner_s'):,.0f} | {median(dlts, 'rss_mb'):.0f} |"
                )
                print(
                    f"| {n:,} | pipeline: load_month (LoadPostgres) | {ours_s:.2f} "
                    f"| {median(ours, 'wall_s'):.2f} | {n / ours_s:,.0f} "
                    f"| {median(ours, 'rss_mb'):.0f} |",
                    flush=True,
                )
                ours_wall, dlt_wall = median(ours, "wall_s"), median(dlts, "wall_s")
                dlt_ratio[rows] = dlt_wall / ours_wall
                summary.append(
                    f"{n:,} rows: {n / ours_s / course_rate:.0f}x the course's rows/s; "
                    f"{ours_s / server_s:.2f}x the server-side COPY time; "
                    f"peak RSS {median(ours, 'rss_mb'):.0f} MB; "
                    f"{dlt_ratio[rows]:.2f}x dlt's rows/s as whole processes "
                    f"({n / ours_wall:,.0f} against {n / dlt_wall:,.0f}; goal >= {DLT_GOAL}) "
                    f"(medians of {args.runs} runs)"
                )
                smoke = args.smoke or None
                x_course = n / ours_s / course_rate
                goal("postgres", f"LoadPostgres at {n:,} rows: >= 50x the course's rows/s",
                     f"{x_course:.0f}x", None if smoke else x_course >= 50,
                     f"course {course_rate:,.0f} rows/s",
                     f"pipeline {n / ours_s:,.0f} rows/s")  # fmt: skip
                goal("postgres", f"LoadPostgres at {n:,} rows: within 1.3x of a server COPY",
                     f"{ours_s / server_s:.2f}x", None if smoke else ours_s / server_s <= 1.3,
                     limit=f"server-side binary COPY {server_s:.2f} s")  # fmt: skip
                goal("postgres", f"LoadPostgres at {n:,} rows: >= {DLT_GOAL}x dlt's rows/s, "
                     "whole processes", f"{dlt_ratio[rows]:.2f}x",
                     None if smoke else dlt_ratio[rows] >= DLT_GOAL,
                     f"dlt {dlt_version()} {n / dlt_wall:,.0f} rows/s")  # fmt: skip
                rss = median(ours, "rss_mb")
                goal("postgres", f"LoadPostgres' process at {n:,} rows: <= 250 MB",
                     f"{rss:.0f} MB", None if smoke else rss <= 250)  # fmt: skip
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
    print()
    print("\n".join(summary))
    if not args.smoke and dlt_ratio[max(dlt_ratio)] < DLT_GOAL:
        raise SystemExit(1)


def dlt_version() -> str:
    from importlib.metadata import version

    return version("dlt")


if __name__ == "__main__":
    main()
