"""LoadPostgres's load function against the course's pandas ``to_sql`` and a server-side COPY.

    .venv/bin/python -m benchmarks.postgres                  # 1.37M and 7.7M rows, 3 runs
    .venv/bin/python -m benchmarks.postgres --rows 1369769 --runs 5

Connects with the PG* variables if set, else to 127.0.0.1:5432 as postgres. It makes a
database ``tlc_bench_<pid>`` and drops it afterwards. The server-side COPY reads a file on the
server's disk, so the server must share this machine and the user must be allowed to run
``COPY ... FROM/TO`` a file (a superuser, or a member of pg_read_server_files and
pg_write_server_files).

Three loaders, all into a fresh logged table:

- **pipeline**: ``pipeline.orchestration.loading.load_month`` with
  ``PostgresWarehouse``, in a fresh process per run. It does the whole LoadPostgres job:
  stage, binary COPY, count check, CHECK constraint, BRIN index, and the swap with its ledger
  row. The schema is dropped between runs, so every run is a first load.
- **course**: the course's ``pq_process_simple.py`` way. pandas reads the raw file, then
  ``to_sql`` writes it in 100k-row chunks through SQLAlchemy and psycopg2. It runs on a
  300k-row month, because it scales linearly and a full month takes minutes. Its rows/s is
  compared with ours.
- **server COPY**: ``COPY t FROM '/file' (FORMAT binary)`` of the same rows into an unindexed
  table. No client work at all: the practical limit.

Reported: the time of the call itself (in-call; for the server COPY it is all there is), the
whole process's wall time, and the process's own peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]

SIZES = (1_369_769, 7_696_617)
COURSE_ROWS = 300_000


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
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, a, db, b = args.child
        fn = child_pipeline if which == "pipeline" else child_course
        print(json.dumps(fn(a, db, b)))
        return

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
                ours = []
                for _ in range(args.runs):
                    execute(db, f"DROP SCHEMA IF EXISTS bench_{rows} CASCADE")
                    r = in_child("pipeline", str(clean_dir), db, f"bench_{rows}")
                    if r["rows"] != n:
                        raise SystemExit(f"loaded {r['rows']} rows, expected {n}")
                    ours.append(r)

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
                    f"| {n:,} | pipeline: load_month (LoadPostgres) | {ours_s:.2f} "
                    f"| {median(ours, 'wall_s'):.2f} | {n / ours_s:,.0f} "
                    f"| {median(ours, 'rss_mb'):.0f} |",
                    flush=True,
                )
                summary.append(
                    f"{n:,} rows: {n / ours_s / course_rate:.0f}x the course's rows/s; "
                    f"{ours_s / server_s:.2f}x the server-side COPY time; "
                    f"peak RSS {median(ours, 'rss_mb'):.0f} MB (medians of {args.runs} runs)"
                )
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
