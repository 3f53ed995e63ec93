"""LoadDuckDB's load function against DuckDB's own INSERT ... SELECT of the clean file.

    .venv/bin/python -m benchmarks.duckdb                    # 1.37M and 7.7M rows, 3 runs
    .venv/bin/python -m benchmarks.duckdb --smoke            # 100k rows, 1 run, no goal (CI)

A synthetic yellow month is cleaned into a local lake once (``clean_month``, as CleanParquet
does). Then, each in a fresh process and into a fresh database file, alternating:

- **pipeline**: ``pipeline.orchestration.loading.load_month`` with ``DuckDBWarehouse``: the
  whole LoadDuckDB job (the table made if missing, the month's old rows deleted, the insert,
  the count check against the quality report, the ledger row, the views with the TLC's names,
  one transaction).
- **limit**: DuckDB alone, ``CREATE TABLE`` with the same columns, then ``INSERT INTO t BY
  NAME SELECT * FROM read_parquet(<the clean file>)``: no checks, no ledger, nothing else.

Reported: the time of the call (in-call), the whole process (wall, imports included) and its
peak RSS (VmHWM). Goal (issue 15): LoadDuckDB within 1.2x of the limit. The script exits 1
when the in-call ratio misses it at the largest size (not with --smoke, whose month is too
small for the ratio to mean anything).
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

from benchmarks.measure import goal, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_369_769, 7_696_617)
GOAL = 1.2


def child_pipeline(lake_root: str, db: str) -> dict[str, float]:
    from pipeline.domain.months import MonthKey
    from pipeline.lake.lake import local
    from pipeline.orchestration.loading import load_month
    from pipeline.sinks.duckdb import DuckDBWarehouse

    t0 = time.perf_counter()
    record = load_month(local(lake_root), MonthKey("yellow", 2021, 1), DuckDBWarehouse(Path(db)),
                        "duckdb")  # fmt: skip
    return {"rows": record.rows_out, "inner_s": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}


def child_limit(lake_root: str, db: str) -> dict[str, float]:
    import duckdb

    from pipeline.domain import catalog
    from pipeline.sinks.duckdb import ident, table_ddl

    files = sorted(str(p) for p in Path(lake_root).rglob("part-*.parquet"))
    columns = [(f.name, f.type) for f in catalog.arrow_schema("yellow")]
    t0 = time.perf_counter()
    with duckdb.connect(db) as con:
        con.execute(table_ddl("yellow_trips", columns))
        con.execute(
            f"INSERT INTO {ident('yellow_trips')} BY NAME"
            " SELECT * FROM read_parquet(?, hive_partitioning = false)",
            [files],
        )
        (rows,) = con.execute(f"SELECT count(*) FROM {ident('yellow_trips')}").fetchone() or (0,)
    return {"rows": rows, "inner_s": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}


CHILDREN = {"pipeline": child_pipeline, "limit": child_limit}


def measure(which: str, lake_root: Path, db: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.duckdb", "--child", which, str(lake_root), str(db)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{which} failed: {proc.stderr[-3000:]}")
    return {"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="rows per month (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="100k rows, one run, goal not checked: that the script still works",
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.runs = [100_000], 1
    if args.child:
        which, lake_root, db = args.child
        print(json.dumps(CHILDREN[which](lake_root, db)))
        return

    import duckdb

    from pipeline.domain.months import MonthKey
    from pipeline.extract.sources import RawInput, open_source
    from pipeline.lake.lake import local
    from pipeline.transform.clean import clean_month
    from tools.synthetic import write_yellow_month

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__}")  # fmt: skip
    print("| rows | loader | in-call s | wall s | rows/s (in-call) | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    ratio = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as t:
        tmp = Path(t)
        for rows in args.rows or SIZES:
            raw = write_yellow_month(tmp / f"yellow_tripdata_2021-01.{rows}.parquet", rows)
            lake_root = tmp / f"lake-{rows}"
            key = MonthKey("yellow", 2021, 1)
            n = clean_month(open_source(RawInput.local(raw), "parquet"), key, local(lake_root))[
                "rows_out"
            ]
            raw.unlink()
            samples: dict[str, list[dict[str, float]]] = {"pipeline": [], "limit": []}
            for run in range(args.runs):
                order = ("pipeline", "limit") if run % 2 == 0 else ("limit", "pipeline")
                for which in order:
                    db = tmp / f"{which}-{rows}-{run}.duckdb"
                    got = measure(which, lake_root, db)
                    if got["rows"] != n:
                        raise SystemExit(f"{which} loaded {got['rows']} rows, expected {n}")
                    samples[which].append(got)
                    db.unlink()
            med = {w: {m: statistics.median(s[m] for s in v) for m in ("inner_s", "wall_s",
                       "rss_mb")} for w, v in samples.items()}  # fmt: skip
            for which in ("limit", "pipeline"):
                m = med[which]
                print(f"| {n:,} | {which} | {m['inner_s']:.2f} | {m['wall_s']:.2f} "
                      f"| {n / m['inner_s']:,.0f} | {m['rss_mb']:.0f} |", flush=True)  # fmt: skip
            ratio = med["pipeline"]["inner_s"] / med["limit"]["inner_s"]
            whole = med["pipeline"]["wall_s"] / med["limit"]["wall_s"]
            print(f"{n:,} rows: LoadDuckDB takes {ratio:.2f}x the limit's time in the call, "
                  f"{whole:.2f}x as whole processes (goal <= {GOAL}; medians of "
                  f"{args.runs} runs)")  # fmt: skip
    goal("duckdb", f"LoadDuckDB at {n:,} rows: within {GOAL}x of DuckDB's own insert",
         f"{ratio:.2f}x", None if args.smoke else ratio <= GOAL,
         limit=f"INSERT ... read_parquet {med['limit']['inner_s']:.2f} s")  # fmt: skip
    rss = med["pipeline"]["rss_mb"]
    goal("duckdb", f"LoadDuckDB's process at {n:,} rows: <= 400 MB", f"{rss:.0f} MB",
         None if args.smoke else rss <= 400,
         limit=f"DuckDB's own insert {med['limit']['rss_mb']:.0f} MB")  # fmt: skip
    if ratio > GOAL and not args.smoke:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
