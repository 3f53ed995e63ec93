"""What is loaded where: the colour-month-sink grid behind ``tlc-status``.

Each cell is one colour-month in one sink, in one of these states:

- **loaded**: the sink's load ledger has the month, with the rows it loaded;
- **failed**: luigid lists a task of the month as FAILED or DISABLED: the sink's own load
  (for BigQuery also the upload it needs), or a stage every sink waits for (download, clean);
- **not published yet**: the TLC cannot have it yet. Either the month has not ended, or it
  ended within the publication lag (``[cron] publication_lag_days``) and the source answers
  a HEAD with 403/404/410. The TLC publishes a month about two months after its end, so
  only those one or two recent months per colour are asked about, never every month;
- **not loaded**: anything else; ``cleaned`` says whether the lake has the clean month
  already (then a Backfill only has to load it);
- **unknown**: the sink's ledger could not be read (the reason is one note line).

A month whose HEAD gets no clear answer (no connection, a 5xx, too slow) stays "not loaded":
that is what a Backfill would try, and the Backfill then tells "not out yet" apart itself.
A loaded cell stays loaded whatever luigid says: the ledger row is written in the same
transaction as the rows, so it is the truth about the warehouse.

What it reads, and what that costs (ten years of four colours in two sinks in under 1 s,
``benchmarks/status.py``): one ledger query per sink (``Sink.loaded_months``), one listing
per colour of the lake's clean markers (``Lake.quality_digests``), two ``task_list`` calls
to luigid with a short timeout (none at all when luigid does not answer: failures are then
simply not shown), and the few HEADs above, in parallel, each bounded.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import requests

from pipeline.domain import catalog, months
from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey, YearMonth
from pipeline.extract.download import NOT_PUBLISHED
from pipeline.lake.lake import Lake
from pipeline.orchestration import preflight
from pipeline.sinks.base import Sink


class State(enum.StrEnum):
    LOADED = "loaded"
    FAILED = "failed"
    NOT_PUBLISHED = "not_published"
    NOT_LOADED = "not_loaded"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Failure:
    """A task of a month that luigid lists as FAILED or DISABLED."""

    key: MonthKey
    sinks: frozenset[str] | None  # the sinks it holds up; None: every sink (download, clean)
    task_id: str
    status: str  # luigid's: FAILED or DISABLED

    def holds_up(self, sink: str) -> bool:
        return self.sinks is None or sink in self.sinks


@dataclass(frozen=True)
class Observed:
    """What the sinks, the lake, luigid and the source said, before any judgement."""

    ledgers: Mapping[str, Mapping[MonthKey, int] | None]  # sink -> month -> rows; None: unread
    cleaned: frozenset[MonthKey] | None = frozenset()  # None: the lake could not be read
    failures: Sequence[Failure] = ()
    unpublished: frozenset[MonthKey] = frozenset()
    notes: tuple[str, ...] = ()  # what could not be read, one line each

    def known(self) -> set[MonthKey]:
        """Months some sink or the lake has: published, whatever the source says today."""
        found = set(self.cleaned or ())
        for ledger in self.ledgers.values():
            found.update(ledger or ())
        return found


@dataclass(frozen=True)
class Cell:
    key: MonthKey
    sink: str
    state: State
    rows: int | None = None  # rows loaded, from the ledger
    cleaned: bool | None = False  # the lake has the clean month (None: lake not read)
    failed_task: str | None = None  # luigid's task id, for a failed cell

    def as_json(self) -> dict[str, object]:
        return {
            "color": self.key.color,
            "year": self.key.year,
            "month": self.key.month,
            "sink": self.sink,
            "state": str(self.state),
            "rows": self.rows,
            "cleaned": self.cleaned,
            "failed_task": self.failed_task,
        }


@dataclass(frozen=True)
class Grid:
    colors: tuple[str, ...]
    sinks: tuple[str, ...]
    first: YearMonth
    last: YearMonth
    cells: Mapping[tuple[MonthKey, str], Cell]
    notes: tuple[str, ...] = ()

    def ordered(self) -> list[Cell]:
        """Colour (as asked), month, sink (as asked)."""
        rank = {c: i for i, c in enumerate(self.colors)}
        order = {s: i for i, s in enumerate(self.sinks)}
        return sorted(
            self.cells.values(),
            key=lambda c: (rank[c.key.color], c.key.ym, order[c.sink]),
        )

    def month_rows(self, key: MonthKey) -> int | None:
        """The month's rows as loaded (the same clean month gives the same rows in every
        sink; the largest if an older load differs)."""
        rows = [
            c.rows for s in self.sinks if (c := self.cells.get((key, s))) and c.rows is not None
        ]
        return max(rows) if rows else None


# -- the model --------------------------------------------------------------------------------
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str, what: str) -> YearMonth:
    """``YYYY-MM`` as (year, month); a BadParameter naming the option otherwise."""
    m = _MONTH.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise BadParameter(f"{what} {text!r}: expected a month as YYYY-MM, e.g. 2021-01")
    return int(m.group(1)), int(m.group(2))


def parse_list(text: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))
    unknown = [i for i in items if i not in allowed]
    if unknown or not items:
        raise BadParameter(f"{what} {text!r}: expected a comma list of {', '.join(allowed)}")
    return items


def all_months(colors: Iterable[str], today: dt.date) -> list[MonthKey]:
    """Every month each colour can have, from its first to the current one."""
    return grid_months(colors, min(catalog.FIRST_MONTH.values()), months.of(today), today)


def grid_months(
    colors: Iterable[str], first: YearMonth, last: YearMonth, today: dt.date
) -> list[MonthKey]:
    """The colour-months from ``first`` to ``last`` that can exist: not before the colour's
    first month, not after the current month."""
    end = min(last, months.of(today))
    return [
        MonthKey(color, *ym)
        for color in colors
        for ym in months.span(max(first, catalog.FIRST_MONTH[color]), end)
    ]


def default_colors(observed: Observed, fallback: Sequence[str]) -> tuple[str, ...]:
    """The colours anything has been done for (catalog order), else ``fallback``."""
    found = {k.color for k in observed.known()}
    return tuple(c for c in catalog.COLORS if c in found) or tuple(fallback)


def default_span(
    observed: Observed, colors: Sequence[str], today: dt.date
) -> tuple[YearMonth, YearMonth]:
    """From the first month anything has for ``colors`` (else this January) to this month."""
    found = [k.ym for k in observed.known() if k.color in colors]
    return (min(found) if found else (today.year, 1)), months.of(today)


def month_end(key: MonthKey) -> dt.date:
    """The first day after the month."""
    return dt.date(*months.add(key.ym, 1), 1)


def publication_checks(
    keys: Iterable[MonthKey], known: set[MonthKey], today: dt.date, lag_days: int
) -> tuple[frozenset[MonthKey], list[MonthKey]]:
    """(months that cannot be published: not ended yet; recent months to ask the source
    about: ended less than ``lag_days`` ago and in no sink or lake). Older months count as
    published: the TLC has had its time."""
    certain: set[MonthKey] = set()
    ask: list[MonthKey] = []
    for key in keys:
        if key in known:
            continue
        end = month_end(key)
        if today < end:
            certain.add(key)
        elif today < end + dt.timedelta(days=lag_days):
            ask.append(key)
    return frozenset(certain), sorted(ask)


def failures_from(
    task_list: Mapping[str, object], families: Mapping[str, frozenset[str] | None]
) -> list[Failure]:
    """The month tasks in luigid's ``task_list`` answer (task id -> its description) whose
    family is one of ``families`` (family -> the sinks it holds up, None for all)."""
    out = []
    for task_id, task in task_list.items():
        if not isinstance(task, dict) or task.get("name") not in families:
            continue
        params = task.get("params")
        if not isinstance(params, dict):
            continue
        try:
            key = MonthKey(str(params["color"]), int(params["year"]), int(params["month"]))
        except (KeyError, TypeError, ValueError):
            continue  # not a month task of ours after all
        family = str(task["name"])
        out.append(Failure(key, families[family], task_id, str(task.get("status", ""))))
    return out


def build(
    colors: Sequence[str],
    sinks: Sequence[str],
    first: YearMonth,
    last: YearMonth,
    observed: Observed,
    today: dt.date,
) -> Grid:
    failures: dict[MonthKey, list[Failure]] = {}
    for f in observed.failures:
        failures.setdefault(f.key, []).append(f)
    cells: dict[tuple[MonthKey, str], Cell] = {}
    for key in grid_months(colors, first, last, today):
        cleaned = None if observed.cleaned is None else key in observed.cleaned
        for sink in sinks:
            ledger = observed.ledgers.get(sink)
            failed = next((f for f in failures.get(key, ()) if f.holds_up(sink)), None)
            if ledger is not None and key in ledger:
                cell = Cell(key, sink, State.LOADED, ledger[key], cleaned)
            elif failed is not None:
                cell = Cell(key, sink, State.FAILED, None, cleaned, failed.task_id)
            elif key in observed.unpublished:
                cell = Cell(key, sink, State.NOT_PUBLISHED, None, cleaned)
            elif ledger is None:
                cell = Cell(key, sink, State.UNKNOWN, None, cleaned)
            else:
                cell = Cell(key, sink, State.NOT_LOADED, None, cleaned)
            cells[key, sink] = cell
    return Grid(tuple(colors), tuple(sinks), first, last, cells, observed.notes)


# -- rendering --------------------------------------------------------------------------------
GLYPH = {
    State.LOADED: "#",
    State.FAILED: "!",
    State.NOT_PUBLISHED: "-",
    State.NOT_LOADED: ".",
    State.UNKNOWN: "?",
}
CLEANED = "+"  # not loaded, but the lake has the clean month
_ANSI = {"#": "32", "+": "33", "!": "1;31", "-": "2", "?": "35"}  # SGR codes
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEGEND = (
    "# loaded   + in the lake, not loaded   . not loaded   - not published yet",
    "! failed or disabled in luigid   ? ledger could not be read",
)


def glyph(cell: Cell) -> str:
    if cell.state is State.NOT_LOADED and cell.cleaned:
        return CLEANED
    return GLYPH[cell.state]


def human(n: int) -> str:
    """12,345,678 -> 12.3M: a year's rows in a few columns."""
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def render_text(grid: Grid, ansi: bool = False) -> str:
    """One row per colour-year, twelve month columns, one character per sink in each cell,
    then the year's rows loaded; a legend. Fits 80 columns with all three sinks."""

    def paint(ch: str) -> str:
        code = _ANSI.get(ch)
        return f"\x1b[{code}m{ch}\x1b[0m" if ansi and code else ch

    width = max(3, len(grid.sinks)) + 1
    label = max((len(c) for c in grid.colors), default=5) + 6
    first, last = (
        f"{grid.first[0]:04d}-{grid.first[1]:02d}",
        f"{grid.last[0]:04d}-{grid.last[1]:02d}",
    )
    lines = [
        f"{', '.join(grid.colors)}: {first} to {last}",
        f"each month: one character per sink: {', '.join(grid.sinks)}",
        "",
        " " * label + "".join(m.ljust(width) for m in _MONTH_NAMES) + "rows".rjust(8),
    ]
    by_row: dict[tuple[str, int], dict[int, MonthKey]] = {}
    for (key, _), _cell in grid.cells.items():
        by_row.setdefault((key.color, key.year), {})[key.month] = key
    for color in grid.colors:
        for year in sorted(y for c, y in by_row if c == color):
            row = by_row[color, year]
            parts: list[str] = []
            total, any_rows = 0, False
            for m in range(1, 13):
                cell_key = row.get(m)
                if cell_key is None:
                    parts.append(" " * width)
                    continue
                chars = "".join(glyph(grid.cells[cell_key, s]) for s in grid.sinks)
                parts.append("".join(paint(ch) for ch in chars) + " " * (width - len(chars)))
                rows = grid.month_rows(cell_key)
                if rows is not None:
                    total, any_rows = total + rows, True
            head = f"{color} {year}".ljust(label)
            lines.append(head + "".join(parts) + (human(total) if any_rows else "").rjust(8))
    if not by_row:
        lines.append("(no months in this range)")
    lines += ["", *LEGEND, *grid.notes]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_json(grid: Grid) -> str:
    """A JSON array, one object per colour-month-sink, one per line."""
    cells = [json.dumps(c.as_json()) for c in grid.ordered()]
    return "[\n" + ",\n".join(cells) + "\n]\n" if cells else "[]\n"


# -- reading ----------------------------------------------------------------------------------
def read_ledger(sink: Sink) -> dict[MonthKey, int]:
    """Rows loaded per month: the sink's whole ledger in one query."""
    return {key: record.rows_out for key, record in sink.loaded_months().items()}


def read_cleaned(lake: Lake, colors: Iterable[str], today: dt.date) -> frozenset[MonthKey]:
    """The months the lake has cleaned: one listing per colour."""
    return frozenset(lake.quality_digests(all_months(colors, today)))


def read_failures(
    url: str, families: Mapping[str, frozenset[str] | None], timeout: float
) -> list[Failure]:
    """luigid's FAILED and DISABLED month tasks; none when luigid does not answer."""
    out: list[Failure] = []
    for status in ("FAILED", "DISABLED"):
        try:
            answer = preflight.api(
                url, "task_list", {"status": status, "upstream_status": "", "search": ""}, timeout
            )
        except (OSError, ValueError, KeyError):
            return []  # luigid is down (or not luigid): nothing to add
        out += failures_from(answer, families)
    return out


def head_unpublished(urls: Mapping[MonthKey, str], timeout: float) -> frozenset[MonthKey]:
    """The months whose source URL answers a HEAD with 403/404/410 within ``timeout``. All
    in parallel; a month with no answer in time is not among them."""
    found: set[MonthKey] = set()
    lock = threading.Lock()

    def ask(key: MonthKey, url: str) -> None:
        try:
            resp = requests.head(url, allow_redirects=True, timeout=(timeout, timeout))
        except requests.RequestException:
            return
        if resp.status_code in NOT_PUBLISHED:
            with lock:
                found.add(key)

    # Daemon threads: one stuck past its timeout (a slow DNS lookup is not covered by it)
    # must not hold the command open at exit.
    threads = [threading.Thread(target=ask, args=i, daemon=True) for i in urls.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 2 * timeout  # connect, then read
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    with lock:
        return frozenset(found)
