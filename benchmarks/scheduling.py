"""A no-op backfill: every month already loaded, so the whole run is completion checks.

    .venv/bin/python -m benchmarks.scheduling --runs 3

It builds a lake and a DuckDB warehouse in which every colour-month from 2015-01 to 2024-12
is complete: a `_quality.json` per month and a matching marker row. Then it times, in fresh
processes with the local scheduler:

- **Backfill**: `luigi --module pipeline Backfill --colors yellow,green,fhv,fhvhv --start
  2015-01 --end 2024-12`. It reads all the markers in one query and compares each with its
  quality file (pipeline/orchestration/backfill.py).
- **per-task checks (baseline)**: the same months given to Luigi as IngestMonth tasks, each
  checking its own targets, one DuckDB read per month. This is what a plain WrapperTask over
  every month does.

Goal: the no-op backfill finishes in under 15 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.measure import goal
from pipeline.domain import catalog
from pipeline.lake.lake import local
from pipeline.orchestration import backfill
from pipeline.sinks.base import LEDGER, LEDGER_TABLE, LoadRecord

ROOT = Path(__file__).resolve().parents[1]

COLORS = ("yellow", "green", "fhv", "fhvhv")
START, END = dt.date(2015, 1, 1), dt.date(2024, 12, 1)


def ledger_rows() -> list[LoadRecord]:
    """A ledger row for every month of the backfill, as a load would write it."""
    return [
        LoadRecord("month", catalog.trips_table(k.color), k.color, k.year, k.month, 1000, 1000,
                   {}, "src", f"{k.color}{k.yyyymm}", "bench", dt.datetime(2026, 1, 1), 1.0)
        for k in backfill.wanted(COLORS, START, END)
    ]  # fmt: skip


def add_bigquery_markers(root: Path, endpoint: str, project: str, dataset: str) -> None:
    """The same months as complete in BigQuery: one load job of ledger rows."""
    from google.cloud import bigquery

    from pipeline.sinks.bigquery import bigquery_client
    from pipeline.sinks.bigquery.warehouse import bq_schema

    client = bigquery_client(project, "US", endpoint)
    client.create_dataset(f"{project}.{dataset}", exists_ok=True)
    columns = list(zip(*(r.values() for r in ledger_rows()), strict=True))
    table = pa.table(
        {name: pa.array(col, type_) for (name, type_), col in zip(LEDGER, columns, strict=True)}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    client.load_table_from_file(
        buf,
        f"{project}.{dataset}.{LEDGER_TABLE}",
        job_config=bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET, schema=bq_schema(LEDGER)
        ),
    ).result()


def build(root: Path) -> int:
    """A lake with a quality report per month, and a DuckDB ledger that has them all."""
    import duckdb

    from pipeline.sinks.duckdb import ident, table_ddl

    the_lake = local(root / "lake")
    records = ledger_rows()
    for r in records:
        assert r.key is not None
        q = root / "lake" / the_lake.quality_name(r.key)
        q.parent.mkdir(parents=True)
        # a whole report, as CleanParquet writes it: quality.parse refuses less
        report = {
            "color": r.color, "year": r.year, "month": r.month, "source_file": "-",
            "source_format": "parquet", "source_manifest": None, "column_map": {},
            "rows_in": 1000, "rows_out": 1000, "rows_dropped": {}, "rows_repaired": 0,
            "nulls": {}, "compression": "zstd(3)", "code_version": "bench",
            "cleaned_at": "2026-01-01T00:00:00+00:00",
            "files": [{"name": "part-0.parquet", "rows": 1000, "bytes": 1,
                       "sha256": r.clean_sha256}],
        }  # fmt: skip
        q.write_text(json.dumps(report))
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute(table_ddl(LEDGER_TABLE, LEDGER))
        marks = ", ".join("?" for _ in LEDGER)
        con.executemany(f"INSERT INTO {ident(LEDGER_TABLE)} VALUES ({marks})",
                        [r.values() for r in records])  # fmt: skip
    return len(records)


BASELINE = """
import sys, luigi, pipeline
from pipeline.orchestration import backfill
from pipeline.orchestration.tasks import IngestMonth
keys = backfill.wanted(%r, __import__("datetime").date(2015, 1, 1),
                       __import__("datetime").date(2024, 12, 1))
ok = luigi.build([IngestMonth(color=k.color, year=k.year, month=k.month) for k in keys],
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

        from tests.support import gcp_emulators

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
    ours_s = statistics.median(ours)
    goal("scheduling", f"no-op Backfill of {n} colour-months ({sinks}): < 15 s",
         f"{ours_s:.2f} s", ours_s < 15,
         f"per-month checks {statistics.median(base):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
