"""``tlc-status`` over ten years of four colours, in DuckDB and PostgreSQL.

    .venv/bin/python -m benchmarks.status --runs 5

It builds what a finished backfill of 2015-01 to 2024-12 leaves, the way
benchmarks/scheduling.py does: a lake with a `_quality.json` per colour-month and a DuckDB
ledger row for each, plus the same ledger rows in a PostgreSQL schema of its own (the local
server, or the PG* variables'). That is 431 colour-months: the grid's 480 cells per sink, less
fhvhv's before 2019-02. Then it times the whole `tlc-status` process (imports, both ledger
reads, the lake listing, a luigid probe, rendering) in fresh processes.

Goal: the median under 2 s; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import goal
from benchmarks.scheduling import COLORS, build, ledger_rows
from pipeline.sinks.base import LEDGER, LEDGER_COLUMNS, LEDGER_TABLE
from tests.support.tlc_server import free_port

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 2.0


def pg_settings() -> dict[str, object]:
    """Where the ledger goes: the PG* variables' server, else 127.0.0.1:5432 as postgres."""
    if any(os.environ.get(v) for v in ("PGHOST", "PGPORT", "PGUSER")):
        return {"database": os.environ.get("PGDATABASE", "postgres")}
    return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}


def build_pg_ledger(schema: str) -> None:
    import psycopg2
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    from pipeline.sinks.postgres import ddl

    c = pg_settings()
    conn = psycopg2.connect(
        host=c.get("host"), port=c.get("port"), user=c.get("user"), dbname=c["database"]
    )
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        table = sql.Identifier(schema, LEDGER_TABLE)
        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                table, ddl.columns(list(LEDGER), not_null=("kind", "rows_out"))
            )
        )
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in LEDGER_COLUMNS)
        query = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(table, cols).as_string(cur)
        execute_values(cur, query, [r.values() for r in ledger_rows()])
    conn.close()


def drop_pg_schema(schema: str) -> None:
    import psycopg2
    from psycopg2 import sql

    c = pg_settings()
    conn = psycopg2.connect(
        host=c.get("host"), port=c.get("port"), user=c.get("user"), dbname=c["database"]
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.close()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"tlc-status failed ({run.returncode}): {run.stderr[-2000:]}")
    return elapsed, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="one run, the goal not checked (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.runs = 1
    schema = f"bench_status_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = Path(tmp)
        n = build(root)
        build_pg_ledger(schema)
        try:
            pg = pg_settings()
            pg_lines = "".join(
                f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n" for k, v in pg.items()
            )
            cfg = root / "bench.toml"
            cfg.write_text(
                f'[lake]\nroot = "{root / "lake"}"\n'
                f'[duckdb]\npath = "{root / "warehouse.duckdb"}"\n'
                f'[pipeline]\nsinks = ["duckdb", "postgres"]\n'
                # a port nobody listens on: luigid down, as status must tolerate
                f'[core]\nscheduler_host = "127.0.0.1"\nscheduler_port = {free_port()}\n'
                f'[postgres]\n{pg_lines}schema = "{schema}"\n'
            )
            env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
            cmd = [
                str(Path(sys.executable).parent / "tlc-status"),
                "--colors", ",".join(COLORS), "--start", "2015-01", "--end", "2024-12",
            ]  # fmt: skip
            times, out = [], ""
            for _ in range(args.runs):
                elapsed, out = timed(cmd, env)
                times.append(elapsed)
        finally:
            drop_pg_schema(schema)
    loaded = sum(line.count("##") for line in out.splitlines()[3:])
    if loaded != n:  # every month shows as loaded in both sinks, or the timing means nothing
        print(out)
        raise SystemExit(f"expected {n} months loaded in both sinks, the grid shows {loaded}")
    median = statistics.median(times)
    print(f"{n} colour-months in duckdb + postgres, tlc-status wall time over {args.runs} runs:")
    print(f"median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}); goal < {GOAL_S} s")
    goal("status", f"tlc-status over {n} colour-months, duckdb + postgres: < {GOAL_S} s",
         f"{median:.2f} s", None if args.smoke else median < GOAL_S)  # fmt: skip
    return 0 if median < GOAL_S or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
