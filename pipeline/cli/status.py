"""``tlc-status``: which months are loaded where, as a grid of colour-year rows (or JSON).

    tlc-status
    tlc-status --colors yellow,green --start 2015-01 --end 2024-12 --sinks duckdb,postgres
    tlc-status --json

Defaults come from the configuration: ``--sinks`` is ``[pipeline] sinks``; ``--colors`` is
every colour the lake or a sink has months of (else ``[cron] colors``); ``--start`` is the
first month any of them has (else this January), ``--end`` this month. A month may still be
unpublished for ``[cron] publication_lag_days`` after its end. pipeline/observe/status.py
says how each cell's state is decided and what is read.

Exit codes: 0 the grid is complete, 1 a sink's ledger or the lake could not be read (their
cells show "?", with one line saying why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NoReturn, TextIO

import pipeline  # noqa: F401  (the package's configuration layers)
from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey, YearMonth
from pipeline.lake.lake import Lake
from pipeline.observe import status
from pipeline.orchestration import config, preflight
from pipeline.sinks.base import Sink
from pipeline.sinks.duckdb import DuckDBWarehouse

EXIT_OK, EXIT_UNREAD, EXIT_USAGE = 0, 1, 2
LUIGID_TIMEOUT = 1.0  # seconds per call; a luigid that is down refuses at once
HEAD_TIMEOUT = 1.5  # seconds to connect and again to answer, per recent month
# A DuckDB load holds the file's lock (readers included) for seconds; a status should say
# "locked" rather than wait [duckdb] lock_timeout for it.
DUCKDB_LOCK_WAIT = 1.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the usage is one `--help` away.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tlc-status", description=__doc__.split("\n\n")[0])
    p.add_argument("--colors", help=f"comma list of {', '.join(catalog.COLORS)}")
    p.add_argument("--start", help="first month, YYYY-MM")
    p.add_argument("--end", help="last month, YYYY-MM (default: this month)")
    p.add_argument("--sinks", help=f"comma list of {', '.join(config.SINKS)}")
    p.add_argument("--json", action="store_true", help="one JSON object per colour-month-sink")
    return p


def families() -> dict[str, frozenset[str] | None]:
    """luigid task families of a month -> the sinks their failure holds up (None: all)."""
    from pipeline.orchestration import tasks

    out: dict[str, frozenset[str] | None] = {
        t.get_task_family(): frozenset({name}) for name, t in tasks.LOAD_TASKS.items()
    }
    out[tasks.UploadGCS.get_task_family()] = frozenset({"bigquery"})
    for every in (tasks.DownloadMonth, tasks.CleanParquet, tasks.IngestMonth):
        out[every.get_task_family()] = None
    return out


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def observe(colors: tuple[str, ...], sinks: tuple[str, ...], today: dt.date) -> status.Observed:
    """Read the sinks' ledgers, the lake and luigid at once, each on a thread of its own.

    Whatever a sink's driver or the lake's store raises (a refused connection, a lock, a
    missing permission or credential) becomes one note: the other columns are still worth
    showing, so nothing here stops the grid."""
    notes: list[str] = []
    # Luigi's configuration objects are made here, on one thread; only the reads go to others.
    warehouses: dict[str, Sink] = {}
    for name in sinks:
        try:
            warehouse = config.sink(name)
        except Exception as e:
            notes.append(f"{name}: its load ledger could not be read ({_reason(e)})")
            continue
        if isinstance(warehouse, DuckDBWarehouse):
            warehouse.lock_timeout = min(warehouse.lock_timeout, DUCKDB_LOCK_WAIT)
        warehouses[name] = warehouse
    lake_root = config.lake().root
    the_lake: Lake | None = None
    try:
        the_lake = config.lake().get()
    except Exception as e:
        notes.append(f"lake {lake_root}: could not be read ({_reason(e)})")
    url = preflight.scheduler_url([])
    ledgers: dict[str, dict[MonthKey, int] | None] = {n: None for n in sinks}
    cleaned: frozenset[MonthKey] | None = None
    with ThreadPoolExecutor(max_workers=len(warehouses) + 2) as pool:
        reads = {n: pool.submit(status.read_ledger, w) for n, w in warehouses.items()}
        lake_read = pool.submit(status.read_cleaned, the_lake, colors, today) if the_lake else None
        failed: Future[list[status.Failure]] | None = None
        if url is not None:
            failed = pool.submit(status.read_failures, url, families(), LUIGID_TIMEOUT)
        for name, read in reads.items():
            try:
                ledgers[name] = read.result()
            except Exception as e:
                notes.append(f"{name}: its load ledger could not be read ({_reason(e)})")
        if lake_read is not None:
            try:
                cleaned = lake_read.result()
            except Exception as e:
                notes.append(f"lake {lake_root}: could not be read ({_reason(e)})")
        failures = failed.result() if failed is not None else []
    return status.Observed(ledgers, cleaned, failures, frozenset(), tuple(notes))


def unpublished(
    keys: list[MonthKey], observed: status.Observed, today: dt.date, lag_days: int
) -> frozenset[MonthKey]:
    certain, ask = status.publication_checks(keys, observed.known(), today, lag_days)
    if not ask:
        return certain
    src = config.source()
    timeout = min(src.connect_timeout, HEAD_TIMEOUT)
    return certain | status.head_unpublished({k: src.url(k) for k in ask}, timeout)


def use_ansi(stream: TextIO) -> bool:
    """Colours on a terminal only, and never with NO_COLOR set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def main(argv: list[str] | None = None) -> int:
    from pipeline.cli.cron import cron  # [cron] colors and publication_lag_days

    args = build_parser().parse_args(argv)
    today = dt.date.today()
    try:
        sinks = (
            status.parse_list(args.sinks, config.SINKS, "--sinks")
            if args.sinks
            else config.pipeline().sink_names()
        )
        asked = status.parse_list(args.colors, catalog.COLORS, "--colors") if args.colors else None
        start: YearMonth | None = status.parse_month(args.start, "--start") if args.start else None
        end: YearMonth | None = status.parse_month(args.end, "--end") if args.end else None
        if start and end and start > end:
            raise BadParameter(f"--start {args.start} is after --end {args.end}")
        fallback = tuple(cron().color_list())
        lag_days = int(cron().publication_lag_days)
    except (BadParameter, ValueError) as e:
        print(f"tlc-status: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    observed = observe(asked or catalog.COLORS, sinks, today)
    colors = asked or status.default_colors(observed, fallback)
    first, last = status.default_span(observed, colors, today)
    first, last = start or first, end or last
    keys = status.grid_months(colors, first, last, today)
    observed = dataclasses.replace(
        observed, unpublished=unpublished(keys, observed, today, lag_days)
    )
    grid = status.build(colors, sinks, first, last, observed, today)
    if args.json:
        sys.stdout.write(status.render_json(grid))
        for note in grid.notes:
            print(f"tlc-status: {note}", file=sys.stderr)
    else:
        sys.stdout.write(status.render_text(grid, ansi=use_ansi(sys.stdout)))
    return EXIT_UNREAD if grid.notes else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
