"""Measuring helpers shared by the benchmark scripts (imported from their own folder)."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's RSS at
    fork into a child's ru_maxrss, which made children of a big parent look big."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def goal(
    script: str, name: str, figure: str, met: bool | None, baseline: str = "", limit: str = ""
) -> None:
    """One goal's result, as a ``GOAL {json}`` line that ``benchmarks/run_all.py`` collects
    into the summary table. ``met`` is None in a smoke run, where sizes are too small for a
    goal to mean anything."""
    import json

    line = {"script": script, "goal": name, "figure": figure, "met": met,
            "baseline": baseline, "limit": limit}  # fmt: skip
    print("GOAL " + json.dumps(line), flush=True)
