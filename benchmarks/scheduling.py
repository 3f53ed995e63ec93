"""A no-op backfill: every month already loaded, so the whole run is completion checks.

    .venv/bin/python benchmarks/scheduling.py --runs 3

It builds a lake and a DuckDB warehouse in which every colour-month from 2015-01 to 2024-12
is complete: a `_quality.json` per month and a matching marker row. Then it times, in fresh
processes with the local scheduler:

- **Backfill**: `luigi --module pipeline Backfill --colors yellow,green,fhv,fhvhv --start
  2015-01 --end 2024-12`. It reads all the markers in one query and compares each with its
  quality file (pipeline/backfill.py).
- **per-task checks (baseline)**: the same months given to Luigi as IngestMonth tasks, each
  checking its own targets, one DuckDB read per month. This is what a plain WrapperTask over
  every month does.

Goal: the no-op backfill finishes in under 15 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLORS = ("yellow", "green", "fhv", "fhvhv")
START, END = dt.date(2015, 1, 1), dt.date(2024, 12, 1)


def build(root: Path) -> int:
    import duckdb

    from pipeline import backfill, lake
    from pipeline.sinks.duckdb import MARKER_TABLE, DuckDBWarehouse

    the_lake = lake.Lake(root / "lake")
    months = backfill.months(COLORS, START, END)
    wh = DuckDBWarehouse(root / "warehouse.duckdb")
    rows = []
    for color, y, m in months:
        d = the_lake.clean_dir(color, y, m)
        d.mkdir(parents=True)
        sha = f"{color}{y}{m:02d}"
        quality = {
            "color": color,
            "year": y,
            "month": m,
            "rows_out": 1000,
            "files": [{"name": "part-0.parquet", "rows": 1000, "bytes": 1, "sha256": sha}],
        }
        (d / lake.QUALITY_FILE).write_text(json.dumps(quality))
        rows.append((color, y, m, 1000, "src", sha, dt.datetime(2026, 1, 1)))
    with wh.connect() as con:
        wh._ensure_marker(con)
        con.executemany(f"INSERT INTO {MARKER_TABLE} VALUES (?,?,?,?,?,?,?)", rows)
    duckdb.connect(str(root / "warehouse.duckdb")).close()
    return len(months)


BASELINE = """
import sys, luigi, pipeline
from pipeline import backfill
from pipeline.tasks import IngestMonth
months = backfill.months(%r, __import__("datetime").date(2015, 1, 1),
                         __import__("datetime").date(2024, 12, 1))
ok = luigi.build([IngestMonth(color=c, year=y, month=m) for c, y, m in months],
                 local_scheduler=True, log_level="WARNING")
sys.exit(0 if ok else 1)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({run.returncode}): {run.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        root = Path(tmp)
        n = build(root)
        cfg = root / "bench.toml"
        cfg.write_text(
            f'[lake]\nroot = "{root / "lake"}"\n[duckdb]\npath = "{root / "warehouse.duckdb"}"\n'
            '[core]\nlog_level = "WARNING"\n'
        )
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
        luigi = str(Path(sys.executable).parent / "luigi")
        backfill_cmd = [
            luigi, "--module", "pipeline", "Backfill", "--colors", ",".join(COLORS),
            "--start", "2015-01", "--end", "2024-12", "--local-scheduler",
        ]  # fmt: skip
        ours = [timed(backfill_cmd, env) for _ in range(args.runs)]
        base = [timed([sys.executable, "-c", BASELINE % (COLORS,)], env) for _ in range(args.runs)]
    print(f"{n} colour-months, all complete, medians of {args.runs} runs (whole process):")
    print("| backfill | wall s |")
    print("|---|---|")
    print(f"| Backfill (bulk marker read) | {statistics.median(ours):.2f} |")
    print(f"| IngestMonth per month (per-task checks) | {statistics.median(base):.2f} |")


if __name__ == "__main__":
    main()
