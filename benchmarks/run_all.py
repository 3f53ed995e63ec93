"""Every benchmark script, one after another, and one table of every goal.

    .venv/bin/python -m benchmarks.run_all                  # full sizes: ~25 min, quiet machine
    .venv/bin/python -m benchmarks.run_all --readme         # ... and write the table into README
    .venv/bin/python -m benchmarks.run_all --smoke          # small sizes, goals unchecked (CI)

Each script prints ``GOAL {json}`` lines (``benchmarks.measure.goal``): the goal, the figure,
its baseline and its limit. This collects them into the summary table at the top of
``benchmarks/README.md`` (between its ``summary`` markers, with ``--readme``), so the table
always comes from one run of every script on one machine. Each script's whole output is kept
in ``--out`` (default: a temp folder, printed).

The scripts run one at a time: each one's figures need the machine to itself. Exit 1 when a
script fails or a goal is missed (in a smoke run, only when a script fails). hosts.py needs
root (network namespaces); without it, it is listed as not run, and that counts as a failure
unless ``--no-hosts`` says it is expected.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- summary:start -->", "<!-- summary:end -->"

# script -> (full-size arguments, smoke arguments)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "clean": (["--runs", "3"], ["--smoke"]),
    "postgres": (["--runs", "3"], ["--smoke"]),
    "duckdb": (["--runs", "3"], ["--smoke"]),
    "scheduling": (["--runs", "3"], ["--runs", "1"]),
    "status": (["--runs", "5"], ["--smoke"]),
    "lake": (["--runs", "3"], ["--smoke"]),
    "hosts": (["--runs", "1"], ["--runs", "1"]),
    "backfill": ([], ["--smoke"]),
    "download": (["--runs", "7"], ["--smoke"]),
}
SMOKE_GOALS_CHECKED = {"hosts"}  # its smoke is a whole run: .ci/run has always checked its goals


def run_script(name: str, args: list[str], out: Path) -> tuple[int, float, list[dict]]:
    log = out / f"{name}.log"
    started = time.monotonic()
    with log.open("w") as f:
        code = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}", *args],
            cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False, timeout=3600,
        ).returncode  # fmt: skip
    took = time.monotonic() - started
    goals = [
        json.loads(line[5:]) for line in log.read_text().splitlines() if line.startswith("GOAL ")
    ]
    return code, took, goals


def table(rows: list[dict], smoke: bool) -> str:
    out = ["| script | goal | figure | met | baseline | limit |", "|---|---|---|---|---|---|"]
    for g in rows:
        met = {True: "**met**", False: "**missed**", None: "—"}[g["met"]]
        if smoke and g["script"] not in SMOKE_GOALS_CHECKED:
            met = "smoke"
        out.append(f"| {g['script']} | {g['goal']} | {g['figure']} | {met} "
                   f"| {g['baseline'] or '—'} | {g['limit'] or '—'} |")  # fmt: skip
    return "\n".join(out)


def write_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"{README}: no {START} ... {END} block to replace")
    head, rest = readme.split(START, 1)
    README.write_text(head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="each script's smoke mode")
    ap.add_argument("--readme", action="store_true", help="write the table into the README")
    ap.add_argument("--only", action="append", choices=sorted(SCRIPTS), help="repeatable")
    ap.add_argument("--no-hosts", action="store_true", help="skip hosts.py (needs root)")
    ap.add_argument("--out", type=Path, help="folder for each script's output")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-all-"))
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SCRIPTS)
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"outputs in {out}", flush=True)  # fmt: skip
    failed, rows = [], []
    started = time.monotonic()
    for name in names:
        full, smoke = SCRIPTS[name]
        if name == "hosts" and (args.no_hosts or os.geteuid() != 0):
            why = "--no-hosts" if args.no_hosts else "not root: no network namespaces"
            print(f"{name}: not run ({why})", flush=True)
            if not args.no_hosts:
                failed.append(f"{name} (not run: {why})")
            continue
        code, took, goals = run_script(name, smoke if args.smoke else full, out)
        print(f"{name}: exit {code} in {took:.0f} s, {len(goals)} goals", flush=True)
        rows += goals
        if code != 0:
            failed.append(f"{name} (exit {code}, see {out / (name + '.log')})")
            tail = (out / f"{name}.log").read_text().splitlines()[-30:]
            print("\n".join(f"  {name}| {line}" for line in tail), file=sys.stderr, flush=True)
        if not goals:
            failed.append(f"{name} (printed no GOAL line)")
    when = dt.date.today().isoformat()
    mode = "smoke sizes, goals not checked" if args.smoke else "full sizes"
    text = (
        f"From `python -m benchmarks.run_all{' --smoke' if args.smoke else ''}` on {when} "
        f"({mode}; {time.monotonic() - started:.0f} s for all), on {platform.node()}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. Figures are medians of "
        "each script's runs; the sections below say what each one measures.\n\n"
        + table(rows, args.smoke)
    )
    print("\n" + text)
    missed = [g["goal"] for g in rows if g["met"] is False]
    if args.smoke:
        missed = [
            g["goal"] for g in rows if g["met"] is False and g["script"] in SMOKE_GOALS_CHECKED
        ]
    if args.readme:
        write_readme(text)
    for f in failed:
        print(f"failed: {f}", file=sys.stderr)
    for m in missed:
        print(f"missed: {m}", file=sys.stderr)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
