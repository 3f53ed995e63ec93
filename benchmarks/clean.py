"""CleanParquet's function against a pandas whole-file clean of the same synthetic month.

    .venv/bin/python -m benchmarks.clean                 # 1.37M and 7.7M rows, 3 runs each
    .venv/bin/python -m benchmarks.clean --rows 1369769 --runs 5

Every measured run is a fresh ``python`` process, so the peak RSS is that clean's alone
(the child's own VmHWM), and the wall time is the whole process,
imports included, as a user running the step would see it. The child also reports the time
spent inside the clean call itself. Both sides read the same generated file and must produce
the same number of rows, or the benchmark fails.

The pandas side is what the course's code and most hand-written scripts do: read the whole
file into a DataFrame, rename the columns to the canonical names, drop ``passenger_count == 0``
and pickups outside the month, cast to the canonical (nullable) dtypes, and write parquet with
the same compression.
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


# --- the two cleans, each run in its own process -----------------------------------------------
def run_pipeline(src: Path, out: Path) -> int:
    from pipeline.domain.months import MonthKey
    from pipeline.extract.sources import RawInput, open_source
    from pipeline.lake.lake import local
    from pipeline.transform.clean import clean_month

    source = open_source(RawInput.local(src), "parquet")
    quality = clean_month(source, MonthKey("yellow", 2021, 1), local(out))
    return quality["rows_out"]


def run_pandas(src: Path, out: Path) -> int:
    import pandas as pd
    import pyarrow as pa

    from pipeline.domain import catalog, months

    index = catalog.alias_index("yellow")
    df = pd.read_parquet(src)
    df = df.rename(columns={c: index[catalog.normalise_name(c)].name for c in df.columns})
    df = df[df["passenger_count"] != 0]
    start, end = months.bounds(2021, 1)
    df = df[(df["pickup_datetime"] >= start) & (df["pickup_datetime"] < end)]
    dtypes = {}
    for col in catalog.SCHEMAS["yellow"]:
        if col.name not in df.columns:
            df[col.name] = None
        if pa.types.is_integer(col.type):
            dtypes[col.name] = "Int64" if col.type.bit_width == 64 else "Int32"
        elif pa.types.is_floating(col.type):
            dtypes[col.name] = "float64"
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            dtypes[col.name] = "string"
        elif pa.types.is_timestamp(col.type):
            dtypes[col.name] = "datetime64[us]"
    df = df[[c.name for c in catalog.SCHEMAS["yellow"]]].astype(dtypes)
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "part-0.parquet", compression="zstd", index=False)
    return len(df)


def child(which: str, src: Path, out: Path) -> None:
    t0 = time.perf_counter()
    rows = {"pipeline": run_pipeline, "pandas": run_pandas}[which](src, out)
    inner = time.perf_counter() - t0
    print(json.dumps({"rows": rows, "inner_s": inner, "rss_mb": peak_rss_mb()}))


# --- the parent: generate, run each side N times in fresh processes, report medians ------------
def measure(which: str, src: Path, work: Path, run: int) -> dict[str, float]:
    out = work / f"out-{which}-{run}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.clean", "--child", which, str(src), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,  # -m finds benchmarks/ (and tools/) from the repository's root
    )
    stdout = proc.stdout.read()  # type: ignore[union-attr]
    _, status, _ = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{which} run failed (exit {os.waitstatus_to_exitcode(status)})")
    result = json.loads(stdout.strip().splitlines()[-1])
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return {
        "wall_s": wall,
        "inner_s": result["inner_s"],
        "rss_mb": result["rss_mb"],
        "rows": result["rows"],
    }


def bench(rows: int, runs: int, work: Path) -> dict[str, dict[str, float]]:
    from tools.synthetic import write_yellow_month

    src = write_yellow_month(work / f"yellow_tripdata_2021-01.{rows}.parquet", rows)
    medians: dict[str, dict[str, float]] = {}
    samples: dict[str, list[dict[str, float]]] = {"pipeline": [], "pandas": []}
    for run in range(runs):
        # Alternate the order so neither side always runs on a warmer page cache.
        order = ("pipeline", "pandas") if run % 2 == 0 else ("pandas", "pipeline")
        for which in order:
            samples[which].append(measure(which, src, work, run))
    for which, runs_ in samples.items():
        counts = {r["rows"] for r in runs_}
        if len(counts) != 1:
            raise SystemExit(f"{which}: row counts differ between runs: {counts}")
        medians[which] = {
            k: statistics.median(r[k] for r in runs_) for k in ("wall_s", "inner_s", "rss_mb")
        }
        medians[which]["rows"] = counts.pop()
    if medians["pipeline"]["rows"] != medians["pandas"]["rows"]:
        raise SystemExit(f"row counts differ: {medians}")
    src.unlink()
    return medians


def main() -> None:
    ap = argparse.ArgumentParser(description="CleanParquet vs a pandas whole-file clean")
    ap.add_argument("--rows", type=int, action="append", help="month size (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="100k rows, 1 run, goals unchecked")
    ap.add_argument("--child", nargs=3, metavar=("WHICH", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.runs = [100_000], 1
    if args.child:
        which, src, out = args.child
        child(which, Path(src), Path(out))
        return

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| rows in | clean | wall s | in-call s | peak RSS MB | rows out |")
    print("|---|---|---|---|---|---|")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-clean-") as tmp:
        for rows in args.rows or SIZES:
            m = bench(rows, args.runs, Path(tmp))
            results[rows] = m
            for which in ("pandas", "pipeline"):
                r = m[which]
                print(
                    f"| {rows:,} | {which} | {r['wall_s']:.2f} | {r['inner_s']:.2f} "
                    f"| {r['rss_mb']:.0f} | {r['rows']:,} |",
                    flush=True,
                )
    print()
    for rows, m in results.items():
        speed = m["pandas"]["wall_s"] / m["pipeline"]["wall_s"]
        mem = m["pipeline"]["rss_mb"] / m["pandas"]["rss_mb"]
        print(
            f"{rows:,} rows: pipeline is {speed:.2f}x pandas' speed at {mem:.2f} of its peak RSS"
            f" (medians of {args.runs} runs)"
        )
    big = max(results)
    m = results[big]
    speed = m["pandas"]["wall_s"] / m["pipeline"]["wall_s"]
    share = m["pipeline"]["rss_mb"] / m["pandas"]["rss_mb"]
    smoke = args.smoke or None
    goal("clean", f"CleanParquet at {big:,} rows: >= 1.5x pandas' speed", f"{speed:.2f}x",
         None if smoke else speed >= 1.5, f"pandas {m['pandas']['wall_s']:.1f} s",
         f"pipeline {m['pipeline']['wall_s']:.1f} s")  # fmt: skip
    goal("clean", f"CleanParquet at {big:,} rows: <= 1/4 of pandas' peak RSS", f"{share:.2f}",
         None if smoke else share <= 0.25, f"pandas {m['pandas']['rss_mb']:.0f} MB",
         f"pipeline {m['pipeline']['rss_mb']:.0f} MB")  # fmt: skip
    small = min(results)
    rss = results[small]["pipeline"]["rss_mb"]
    goal("clean", f"CleanParquet's process at {small:,} rows: < 400 MB", f"{rss:.0f} MB",
         None if smoke else rss < 400)  # fmt: skip


if __name__ == "__main__":
    main()
