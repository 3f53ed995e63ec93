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


def add_bigquery_markers(root: Path, endpoint: str, project: str, dataset: str) -> None:
    """The same months as complete in BigQuery: one load job of marker rows."""
    import pyarrow as pa

    from pipeline.orchestration import backfill
    from pipeline.sinks.bigquery.warehouse import (
        _MARKER_COLUMNS,
        MARKER_TABLE,
        BigQueryWarehouse,
        bigquery_client,
    )

    wh = BigQueryWarehouse(bigquery_client(project, "US", endpoint), dataset)
    wh._ensure_dataset()
    wh._ensure_marker()
    months = backfill.months(COLORS, START, END)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cols = {k: [] for k in _MARKER_COLUMNS}
    for color, y, m in months:
        for k, v in zip(
            _MARKER_COLUMNS,
            (color, y, m, 1000, "src", f"{color}{y}{m:02d}", "crc", "l", "q", now),
            strict=True,
        ):
            cols[k].append(v)
    from google.cloud import bigquery

    table = pa.table(cols)
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    wh.client.load_table_from_file(
        buf,
        wh.table_id(MARKER_TABLE),
        job_config=bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET),
    ).result()


def build(root: Path) -> int:
    import duckdb

    from pipeline import lake
    from pipeline.orchestration import backfill
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
from pipeline.orchestration import backfill
from pipeline.orchestration.tasks import IngestMonth
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
    ap.add_argument(
        "--bigquery",
        action="store_true",
        help="also load into BigQuery: sinks duckdb+bigquery, against the local emulators",
    )
    args = ap.parse_args()
    if args.bigquery:
        import contextlib

        from tests import gcp_emulators

        stack = contextlib.ExitStack()
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-emu-")))
        gcs = stack.enter_context(gcp_emulators.fake_gcs(work))
        bq = stack.enter_context(gcp_emulators.local_bigquery(work, gcs.root))
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        root = Path(tmp)
        n = build(root)
        cfg = root / "bench.toml"
        text = (
            f'[lake]\nroot = "{root / "lake"}"\n[duckdb]\npath = "{root / "warehouse.duckdb"}"\n'
            '[core]\nlog_level = "WARNING"\n'
        )
        if args.bigquery:
            add_bigquery_markers(root, bq.endpoint, bq.project, "bench")
            text += (
                '[pipeline]\nsinks = ["duckdb", "bigquery"]\n'
                f'[bigquery]\nproject = "{bq.project}"\ndataset = "bench"\n'
                f'api_endpoint = "{bq.endpoint}"\n'
            )
        cfg.write_text(text)
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
        luigi = str(Path(sys.executable).parent / "luigi")
        backfill_cmd = [
            luigi, "--module", "pipeline", "Backfill", "--colors", ",".join(COLORS),
            "--start", "2015-01", "--end", "2024-12", "--local-scheduler",
        ]  # fmt: skip
        ours = [timed(backfill_cmd, env) for _ in range(args.runs)]
        base = [timed([sys.executable, "-c", BASELINE % (COLORS,)], env) for _ in range(args.runs)]
    if args.bigquery:
        stack.close()
    sinks = "duckdb + bigquery (emulator)" if args.bigquery else "duckdb"
    print(f"{n} colour-months in {sinks}, all complete, medians of {args.runs} runs:")
    print("| backfill | wall s |")
    print("|---|---|")
    print(f"| Backfill (bulk marker read) | {statistics.median(ours):.2f} |")
    print(f"| IngestMonth per month (per-task checks) | {statistics.median(base):.2f} |")


if __name__ == "__main__":
    main()
