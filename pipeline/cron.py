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
- logs to a rotating file as well as stdout, with one summary line per run.

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
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import luigi

import pipeline  # noqa: F401  (selects the TOML config parser)
from pipeline import backfill, config
from pipeline.config import TomlListParameter

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SCHEDULER, EXIT_LOCKED = 0, 1, 2, 3, 4

log = logging.getLogger("tlc-cron")


class cron(luigi.Config):  # noqa: N801  (the TOML section's name)
    colors = TomlListParameter(default=["yellow", "green"])
    catch_up_months = luigi.IntParameter(default=3)
    publication_lag_days = luigi.IntParameter(
        default=60, description="days after a month's end when the TLC has published it"
    )
    local_scheduler = luigi.BoolParameter(default=False)
    lock_file = luigi.Parameter(default="data/tlc-cron.lock")
    log_file = luigi.Parameter(default="data/logs/tlc-cron.log")

    def color_list(self) -> list[str]:
        colors = list(self.colors) if not isinstance(self.colors, str) else [self.colors]
        return backfill.parse_colors(",".join(colors))


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
        f.write(f"{__import__('os').getpid()}\n")
        f.flush()
        yield True


def scheduler_reachable() -> str | None:
    """None if luigid answers, else why not."""
    core = luigi.interface.core()
    url = f"http://{core.scheduler_host}:{core.scheduler_port}/api/ping"
    try:
        with urllib.request.urlopen(url + "?data=%7B%22worker%22%3A%22tlc-cron%22%7D", timeout=5):
            return None
    except OSError as e:
        return f"luigid at {core.scheduler_host}:{core.scheduler_port} is unreachable ({e})"


def setup_logging(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(log_file, maxBytes=10 << 20, backupCount=5),
        logging.StreamHandler(sys.stdout),
    ]
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False


FAILED_GROUPS = ("failed", "scheduling_error", "upstream_failure", "upstream_scheduling_error")


def summarize(result: Any) -> dict[str, list[str]]:
    """IngestMonth tasks by outcome, from Luigi's own summary of the run."""
    from luigi.execution_summary import _summary_dict

    groups = _summary_dict(result.worker)

    def months(keys: tuple[str, ...], family: str = "IngestMonth") -> list[str]:
        return sorted(
            f"{t.color} {t.year:04d}-{t.month:02d}"
            for k in keys
            for t in groups.get(k, ())
            if t.task_family == family
        )

    return {
        "done": months(("completed",)),
        "not_published": months(("still_pending_ext",), "MonthPublished"),
        "failed": sorted(
            {
                f"{t.color} {t.year:04d}-{t.month:02d}"
                for k in FAILED_GROUPS
                for t in groups.get(k, ())
                if hasattr(t, "year")
            }
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tlc-cron", description=__doc__.split("\n\n")[0])
    p.add_argument("--today", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD")
    args = p.parse_args(argv)
    cfg = cron()
    setup_logging(Path(cfg.log_file))
    today = args.today or dt.date.today()
    try:
        colors = cfg.color_list()
    except ValueError as e:
        log.error("%s", e)
        return EXIT_USAGE
    with single_run(Path(cfg.lock_file)) as mine:
        if not mine:
            log.warning("another tlc-cron run holds %s; exiting", cfg.lock_file)
            return EXIT_LOCKED
        if not cfg.local_scheduler:
            why = scheduler_reachable()
            if why:
                log.error("%s; start it (tlc-luigid) or set [cron] local_scheduler = true", why)
                return EXIT_NO_SCHEDULER
        months = expected_months(today, cfg.publication_lag_days, cfg.catch_up_months)
        start, end = dt.date(*months[0], 1), dt.date(*months[-1], 1)
        log.info(
            "ingesting %s for %s to %s (months expected published by %s)",
            ",".join(colors),
            f"{start:%Y-%m}",
            f"{end:%Y-%m}",
            today,
        )
        from pipeline.tasks import Backfill

        all_months = backfill.months(colors, start, end, today)
        sinks = [config.sink(n) for n in config.pipeline().sink_names()]
        already = backfill.complete_months(all_months, sinks, config.lake().get())
        result = luigi.build(
            [Backfill(colors=",".join(colors), start=start, end=end)],
            local_scheduler=cfg.local_scheduler,
            detailed_summary=True,
        )
        s = summarize(result)
        if s["not_published"]:
            log.info("not published yet: %s", ", ".join(s["not_published"]))
        log.info(
            "summary: done %d, skipped %d, not yet published %d, failed %d%s",
            len(s["done"]),
            len(already),
            len(s["not_published"]),
            len(s["failed"]),
            f" ({', '.join(s['failed'])})" if s["failed"] else "",
        )
        if s["failed"] or not result.scheduling_succeeded:
            return EXIT_FAILED
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
