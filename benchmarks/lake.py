"""DownloadMonth and CleanParquet with the lake in a folder and on GCS (fake-gcs-server).

    .venv/bin/python -m benchmarks.lake --runs 3             # 7.7M rows

The same synthetic 7.7M-row month, served over HTTP on 127.0.0.1, is downloaded into the lake
and cleaned from it and back into it by the functions the tasks call
(``pipeline.orchestration.loading.download_file`` and ``clean_month``), once with
``[lake] root`` a local folder (the baseline, measured in the same run) and once with
``gs://bucket/lake`` on the emulator. Each step runs in a fresh process, which reports its own
peak RSS (VmHWM). Goal (issue 12): the same peak RSS per process as with a local lake, within
10 %, and flat: from a quarter month to a whole one, peak RSS grows no more than with a
local lake (the GCS writer holds two 4 MiB
pieces; reads are pyarrow's range reads). The fixed cost of importing and making the GCS
clients is measured apart and printed, so a miss says what it is made of.

Time is reported but is not a goal: against an emulator on the same two cores, an upload is
this machine's CPU twice over (client and server) and says little about GCS.
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
ROWS = 7_696_617


def child(step: str, root: str, url: str) -> None:
    from pipeline.domain.months import MonthKey
    from pipeline.extract.download import RetryPolicy
    from pipeline.lake.lake import open_lake
    from pipeline.orchestration import loading

    key = MonthKey("yellow", 2021, 1)
    if step == "imports":  # what a gs:// lake costs before any byte moves
        from pipeline.lake import gcs

        gcs.storage_client(None)
        gcs.arrow_filesystem(os.environ.get("STORAGE_EMULATOR_HOST"), None)
        print(json.dumps({"rows": 0, "inner_s": 0.0, "rss_mb": peak_rss_mb()}))
        return
    lake = open_lake(root)
    t0 = time.perf_counter()
    if step == "download":
        raw = loading.download_file(url, lake, lake.raw_name(key, "parquet"), "parquet",
                                    RetryPolicy(attempts=1))  # fmt: skip
        rows = int(raw.manifest["bytes"])
    else:
        rows = loading.clean_month(lake, key, "parquet")["rows_out"]
    inner = time.perf_counter() - t0
    print(json.dumps({"rows": rows, "inner_s": inner, "rss_mb": peak_rss_mb()}))


def peak_rss_of_imports_only() -> float:
    """Peak RSS of a process that imports what the local-lake children import."""
    code = (
        "import json; import pipeline.orchestration.loading, pipeline.lake.lake; "
        "from benchmarks.measure import peak_rss_mb; print(json.dumps(peak_rss_mb()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def measure(step: str, root: str, url: str, env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.lake", "--child", step, root, url],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{step} into {root} failed: {proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="200k rows, 1 run, goals unchecked")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.runs = 200_000, 1
    if args.child:
        child(*args.child)
        return

    from google.cloud import storage

    from tests.support import gcp_emulators
    from tests.support.tlc_server import TLCServer
    from tools.synthetic import write_yellow_month

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as t:
        tmp = Path(t)
        src = write_yellow_month(tmp / "src.parquet", args.rows)
        small = write_yellow_month(tmp / "small.parquet", args.rows // 4)
        server = TLCServer(tmp / "cdn").start()
        url = server.publish_month("yellow", 2021, 1, src, "parquet")
        small_url = server.publish("/small/yellow_tripdata_2021-01.parquet", small)
        print(f"# {args.rows:,} rows, {src.stat().st_size / 1e6:.0f} MB of parquet; a quarter "
              f"month of {args.rows // 4:,} rows for the flatness check")  # fmt: skip
        with gcp_emulators.fake_gcs(tmp / "gcs") as gcs:
            env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs.url}
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
            client = storage.Client(project=gcp_emulators.PROJECT)
            samples: dict[tuple[str, str], list[dict[str, float]]] = {}
            for run in range(args.runs):
                lakes = {"local": str(tmp / f"lake-{run}")}
                client.create_bucket(f"bench-lake-{run}")
                lakes["gcs"] = f"gs://bench-lake-{run}/lake"
                order = ("local", "gcs") if run % 2 == 0 else ("gcs", "local")
                client.create_bucket(f"bench-lake-small-{run}")
                lakes["gcs, 1/4 month"] = f"gs://bench-lake-small-{run}/lake"
                lakes["local, 1/4 month"] = str(tmp / f"lake-small-{run}")
                for step in ("download", "clean"):
                    for kind in (*order, "local, 1/4 month", "gcs, 1/4 month"):
                        source = small_url if "1/4" in kind else url
                        samples.setdefault((step, kind), []).append(
                            measure(step, lakes[kind], source, env)
                        )
                samples.setdefault(("imports", "gcs"), []).append(
                    measure("imports", lakes["gcs"], url, env)
                )
        server.stop()
    print("| step | lake | wall s | in-call s | peak RSS MB |")
    print("|---|---|---|---|---|")
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall_s", "inner_s", "rss_mb")}
           for k, v in samples.items()}  # fmt: skip
    for (step, kind), m in med.items():
        print(f"| {step} | {kind} | {m['wall_s']:.2f} | {m['inner_s']:.2f} | {m['rss_mb']:.0f} |")
    fixed = med[("imports", "gcs")]["rss_mb"] - peak_rss_of_imports_only()
    print(f"\nthe GCS clients (google-cloud-storage, pyarrow's GcsFileSystem) imported and made "
          f"cost {fixed:.0f} MB before any byte moves")  # fmt: skip
    missed = []
    for step in ("download", "clean"):
        gcs, local = med[(step, "gcs")]["rss_mb"], med[(step, "local")]["rss_mb"]
        # flat: from a quarter month to a whole one, RSS grows no more than with a local lake
        flat = (gcs / med[(step, "gcs, 1/4 month")]["rss_mb"]) / (
            local / med[(step, "local, 1/4 month")]["rss_mb"]
        )
        speed = med[(step, "gcs")]["inner_s"] / med[(step, "local")]["inner_s"]
        print(f"{step}: peak RSS on gs:// is {gcs / local:.2f}x the local lake's (goal <= 1.10), "
              f"+{gcs - local:.0f} MB of which {fixed:.0f} MB the clients; growth from a "
              f"quarter month {flat:.2f}x the local lake's (flat: <= 1.05); time {speed:.2f}x "
              f"(medians of {args.runs} runs)")  # fmt: skip
        if gcs / local > 1.10 or flat > 1.05:
            missed.append(step)
        goal("lake", f"{step} into a gs:// lake: peak RSS <= 1.10x a local lake's",
             f"{gcs / local:.2f}x", None if args.smoke else gcs / local <= 1.10,
             f"local {local:.0f} MB",
             f"gs:// {gcs:.0f} MB, {fixed:.0f} MB of it the clients")  # fmt: skip
        goal("lake", f"{step} into a gs:// lake: flat as the month grows (<= 1.05)",
             f"{flat:.2f}", None if args.smoke else flat <= 1.05,
             "growth with a local lake")  # fmt: skip
    if missed and not args.smoke:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
