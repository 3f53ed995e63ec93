"""Force a rerun of one month: ``tlc-forget --color green --year 2021 --month 1 --from clean``.

Luigi reruns a task only when its output is missing, so forcing means removing outputs:
``--from load`` (the default) drops the load markers (the next run reloads from the clean lake,
replacing the month's rows), ``--from clean`` also removes the clean month, ``--from raw`` also
removes the download, which costs a new download, so it asks first unless ``--yes``.
``--dry-run`` lists what would go and changes nothing. Rows in the warehouse are never deleted
here: the next load replaces them atomically. Tasks of the month that luigid has disabled
after repeated failures are re-enabled, when luigid answers.

Exit codes: 0 done (or nothing to do), 1 failed (a sink unreachable), 2 bad arguments,
3 declined at the prompt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import pipeline  # noqa: F401  (the package's configuration layers)
from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.orchestration import config, preflight

STAGES = ("raw", "clean", "load")
EXIT_FAILED, EXIT_USAGE, EXIT_DECLINED = 1, 2, 3


def plan(key: MonthKey, start: str, sinks: Sequence[str]) -> list[str]:
    """What ``forget`` would remove, without removing it."""
    return forget(key, start, sinks, dry_run=True)


def forget(
    key: MonthKey, start: str, sinks: Sequence[str] = ("duckdb",), *, dry_run: bool = False
) -> list[str]:
    """Remove the month's outputs from stage ``start`` on; return what was (or would be) removed."""
    done: list[str] = []
    for name in sinks:
        warehouse = config.sink(name)
        record = warehouse.loaded(key)
        if record is not None and (dry_run or warehouse.forget(key)):
            done.append(f"load ledger row {key.label} in {name} ({warehouse!r})")
    stages = set(STAGES[STAGES.index(start) :]) - {"load"}  # this stage and all after it
    the_lake = config.lake().get()
    done += the_lake.remove_month(key, stages, dry_run)
    if "clean" in stages and config.gcs().bucket and not config.lake().on_gcs():
        # The bucket's copy of the clean month goes too, or UploadGCS would find it complete.
        done += config.gcs().get().remove_month(key, dry_run=dry_run)
    if not dry_run:
        done += reenable(key)
    return done


def reenable(key: MonthKey) -> list[str]:
    """Re-enable the month's tasks that luigid disabled; quietly nothing if luigid is down."""
    from pipeline.orchestration import tasks

    url = preflight.scheduler_url([])
    if url is None:
        return []
    try:
        disabled = preflight.probe(url)
    except preflight.SchedulerUnreachable:
        return []
    families: list[type[tasks.MonthTask]] = [
        tasks.DownloadMonth,
        tasks.CleanParquet,
        tasks.LoadDuckDB,
        tasks.LoadPostgres,
        tasks.UploadGCS,
        tasks.LoadBigQuery,
    ]
    ids = [f(color=key.color, year=key.year, month=key.month).task_id for f in families]
    # Every month's loads need the zone lookup: when luigid disabled its tasks, no month runs.
    ids += [tasks.DownloadZones().task_id]
    ids += [tasks.LoadZones(sink=sink).task_id for sink in config.SINKS]
    out = []
    for task_id in ids:
        if task_id in disabled:
            try:
                preflight.api(url, "re_enable_task", {"task_id": task_id})
            except (OSError, ValueError, KeyError) as e:  # what was removed stays removed
                print(
                    f"tlc-forget: warning: luigid at {preflight.shown(url)} did not re-enable "
                    f"{task_id} ({getattr(e, 'reason', None) or e}): re-enable it in the "
                    "visualizer",
                    file=sys.stderr,
                )
                continue
            out.append(f"luigid's disable of {task_id}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tlc-forget", description=__doc__.split("\n\n")[0])
    p.add_argument("--color", default="yellow", choices=catalog.COLORS, help="default yellow")
    p.add_argument("--year", type=int, required=True, help="e.g. 2021")
    p.add_argument("--month", type=int, required=True, help="1-12")
    p.add_argument(
        "--from",
        dest="start",
        choices=STAGES,
        default="load",
        help="load (default): reload only; clean: re-clean and reload; raw: download again too",
    )
    p.add_argument(
        "--sink",
        choices=(*config.SINKS, "all"),
        default="duckdb",
        help="whose load marker to drop (default duckdb; all: every sink in [pipeline] sinks)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask before deleting raw files")
    return p


def main(argv: list[str] | None = None, ask: Callable[[str], str] = input) -> int:
    args = build_parser().parse_args(argv)
    try:
        key = MonthKey(args.color, args.year, args.month)
        sinks = config.pipeline().sink_names() if args.sink == "all" else (args.sink,)
    except (BadParameter, ValueError) as e:
        print(f"tlc-forget: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.dry_run or (args.start == "raw" and not args.yes):
            planned = plan(key, args.start, sinks)
            for item in planned:
                print(f"would remove {item}")
            if args.dry_run or not planned:
                if not planned:
                    print("nothing to remove: the month was not done")
                return 0
            try:
                answer = ask("Delete these, including the downloaded file? [y/N] ")
            except EOFError:  # no terminal (cron, a pipe): only --yes deletes raw files
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return EXIT_DECLINED
        removed = forget(key, args.start, sinks)
    except PipelineError as e:
        print(f"tlc-forget: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove: the month was not done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
