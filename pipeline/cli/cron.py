"""``tlc-cron``: keep the last few published months ingested, from cron.

    0 6 * * * cd /srv/tlc && .venv/bin/tlc-cron >> data/logs/cron.out 2>&1

Unlike a bare ``luigi`` command, it:
- works out which months should be out by now (``[cron] publication_lag_days`` after a
  month's end) and runs a Backfill of the last ``catch_up_months`` of them for
  ``[cron] colors``;
- runs one at a time (a lock file), so a slow night never overlaps the next;
- treats a month that is not published yet as normal (exit 0, with a log line);
- refuses to fall back to a local scheduler unless ``[cron] local_scheduler = true``: a luigid
  that is down is an operations problem, not a reason to run unseen;
- logs to a rotating file as well as stderr, with one summary line per run;
- ends in bounded time: a month that is not out yet, an unreachable source or a failed task
  ends the run within the bounds of docs/operations.md, never waits for luigid's retry.

Exit codes: 0 done (or only months not published yet), 1 something failed, 3 the scheduler
is unreachable, 4 another run holds the lock, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import luigi
from luigi.execution_summary import LuigiStatusCode

import pipeline  # noqa: F401  (the package's configuration layers)
from pipeline.domain.errors import BadParameter, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.orchestration import backfill, config, logs, preflight
from pipeline.orchestration.config import TomlListParameter
from pipeline.orchestration.tasks import NOT_PUBLISHED, Backfill, MonthTask

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SCHEDULER, EXIT_LOCKED = 0, 1, 2, 3, 4

log = logging.getLogger("tlc-cron")


class cron(luigi.Config):  # noqa: N801  (the TOML section's name)
    colors = TomlListParameter(default=("yellow", "green"), description="colours to keep ingested")
    catch_up_months = luigi.IntParameter(
        default=3, description="how many of the latest published months to ensure"
    )
    publication_lag_days = luigi.IntParameter(
        default=60, description="days after a month's end when the TLC has published it"
    )
    local_scheduler = luigi.BoolParameter(
        default=False, description="run without luigid (otherwise a luigid that is down fails)"
    )
    lock_file = luigi.Parameter(
        default="data/tlc-cron.lock", description="one run at a time: the lock"
    )
    log_file = luigi.Parameter(
        default="data/logs/tlc-cron.log", description="rotating log (10 MB x 5)"
    )

    def color_list(self) -> list[str]:
        return backfill.parse_colors(",".join(str(c) for c in self.colors))


def expected_months(today: dt.date, lag_days: int, count: int) -> list[tuple[int, int]]:
    """The last ``count`` months whose end is at least ``lag_days`` before ``today``."""
    y, m = today.year, today.month
    out: list[tuple[int, int]] = []
    while len(out) < count:
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        end = dt.date(y + m // 12, m % 12 + 1, 1)  # first day after the month
        if end + dt.timedelta(days=lag_days) <= today:
            out.append((y, m))
    return sorted(out)


@contextlib.contextmanager
def single_run(lock_path: Path) -> Iterator[bool]:
    """True if this process got the lock; the OS releases it if the process dies."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield True


def setup_logging(log_file: Path) -> None:
    """The [logging] configuration of every run, plus the rotating file, for every logger."""
    from luigi.setup_logging import InterfaceLogging

    InterfaceLogging.setup()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=10 << 20, backupCount=5)
    root = logging.getLogger()
    for existing in root.handlers[:1]:  # the same format and filters as the console
        handler.setFormatter(existing.formatter)
        for f in existing.filters:
            handler.addFilter(f)
    root.addHandler(handler)
    log.setLevel(logging.INFO)


@dataclass
class Outcome:
    """What happened to each month in this run, from Luigi's events (workers = 1, so every
    event fires in this process)."""

    failed: set[MonthKey] = field(default_factory=set)
    not_published: set[MonthKey] = field(default_factory=set)
    unknown: set[MonthKey] = field(default_factory=set)  # complete() raised, or data missing

    def listen(self) -> None:
        def key(task: luigi.Task) -> MonthKey | None:
            return task.key if isinstance(task, MonthTask) else None

        def failed(task: luigi.Task, *_: object) -> None:
            if (k := key(task)) is not None:
                self.failed.add(k)

        def missing(task: luigi.Task) -> None:
            if (k := key(task)) is not None:
                self.unknown.add(k)

        def unpublished(task: luigi.Task) -> None:
            if (k := key(task)) is not None:
                self.not_published.add(k)

        luigi.Task.event_handler(luigi.Event.FAILURE)(failed)
        luigi.Task.event_handler(luigi.Event.BROKEN_TASK)(failed)
        luigi.Task.event_handler(luigi.Event.DEPENDENCY_MISSING)(missing)
        luigi.Task.event_handler(NOT_PUBLISHED)(unpublished)

    def failures(self) -> set[MonthKey]:
        # DEPENDENCY_MISSING also fires when complete() raised (an unreachable source):
        # a month that was missing but not reported "not published" did not run.
        return self.failed | (self.unknown - self.not_published)


def _label(months: set[MonthKey]) -> str:
    return ", ".join(k.label for k in sorted(months))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tlc-cron", description=__doc__.split("\n\n")[0])
    p.add_argument("--today", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    args = p.parse_args(argv)
    cfg = cron()
    setup_logging(Path(cfg.log_file))
    today = args.today or dt.date.today()
    try:
        colors = cfg.color_list()
    except BadParameter as e:
        log.error("[cron] colors: %s", e)
        return EXIT_USAGE
    if cfg.catch_up_months < 1:
        log.error("[cron] catch_up_months = %d: must be 1 or more", cfg.catch_up_months)
        return EXIT_USAGE
    with single_run(Path(cfg.lock_file)) as mine:
        if not mine:
            log.warning("another tlc-cron run holds %s; exiting", cfg.lock_file)
            return EXIT_LOCKED
        url = None if cfg.local_scheduler else preflight.scheduler_url([])
        if url is not None and preflight.probeable(url):
            try:
                preflight.remember(url, preflight.probe(url or ""))
            except preflight.SchedulerUnreachable as e:
                log.error("%s: start it (tlc-luigid) or set [cron] local_scheduler = true", e)
                return EXIT_NO_SCHEDULER
        return _run(colors, today, cfg)


def _run(colors: list[str], today: dt.date, cfg: cron) -> int:
    months = expected_months(today, cfg.publication_lag_days, cfg.catch_up_months)
    start, end = dt.date(*months[0], 1), dt.date(*months[-1], 1)
    log.info(
        "ingesting %s for %s to %s (months expected published by %s)",
        ",".join(colors),
        f"{start:%Y-%m}",
        f"{end:%Y-%m}",
        today,
    )
    wanted = backfill.wanted(colors, start, end, today)
    try:
        sinks = [config.sink(n) for n in config.pipeline().sink_names()]
        before = backfill.complete_months(wanted, sinks, config.lake().get())
    except (PipelineError, ValueError) as e:
        log.error("cannot read the sinks' load ledgers: %s", e)
        return EXIT_FAILED
    outcome = Outcome()
    outcome.listen()
    try:
        result = luigi.build(
            [Backfill(colors=",".join(colors), start=start, end=end)],
            local_scheduler=cfg.local_scheduler,
            detailed_summary=True,
        )
        after = backfill.complete_months(wanted, sinks, config.lake().get())
    except Exception as e:  # luigid gone for good mid-run, a sink unreadable afterwards
        line = logs.one_line(e)
        if line is None:
            raise
        log.error("run ended early: %s", line)
        return EXIT_FAILED
    done, failed = after - before, outcome.failures() - after
    not_published = outcome.not_published - after
    # Months that neither loaded, nor failed, nor wait for the TLC. Behind a failed task that
    # is not a month's (the zone lookup's download or load), they never ran: not done is not
    # success. In a run where nothing failed, another worker holds them (tlc-cron on several
    # hosts against one luigid, docs/scaling.md): normal, its own run reports them.
    not_run = set(wanted) - after - not_published - failed
    blocked = bool(not_run) and result.status in (
        LuigiStatusCode.FAILED,
        LuigiStatusCode.FAILED_AND_SCHEDULING_FAILED,
    )
    if not_published:
        log.info("not published yet: %s", _label(not_published))
    if blocked:
        log.error("not done, behind a task that failed (see above): %s", _label(not_run))
    elif not_run:
        log.info("not done here, another worker holds them (luigid): %s", _label(not_run))
    log.info(
        "summary: done %d, skipped %d, not yet published %d, failed %d%s, not run %d",
        len(done),
        len(before),
        len(not_published),
        len(failed),
        f" ({_label(failed)})" if failed else "",
        len(not_run),
    )
    if failed or blocked or not result.scheduling_succeeded:
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
