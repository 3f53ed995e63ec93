"""Which colour-month pairs a backfill must still run, decided in bulk.

A 10-year backfill of four colours is 480 months. Asking each month's targets whether they
are complete means 480 times (sinks) marker reads, which is a DuckDB open, a Postgres connection
or a BigQuery request each time. Instead, each sink lists all its load markers once
(``loaded_months``), and each month's marker is compared with its ``_quality.json`` in the
lake, as the month's own target would do (``sinks.marker_matches``).

luigi.tools.range is not used. RangeMonthly wants a task with a single MonthParameter, but
ours take ``--year``/``--month``, as the card's command does. Its ``months_back`` default of
13 would also silently drop older months of a long backfill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter
from pipeline.lake import local as lake
from pipeline.sinks import base as sinks

Month = tuple[str, int, int]  # (colour, year, month)


def parse_colors(text: str) -> list[str]:
    colors = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in colors if c not in catalog.COLORS]
    if unknown or not colors:
        raise BadParameter(f"--colors {text!r}: expected a comma list of {catalog.COLORS}")
    return colors


def months(
    colors: Sequence[str], start: dt.date, end: dt.date, today: dt.date | None = None
) -> list[Month]:
    """Every colour-month from ``start`` to ``end`` (inclusive) that can exist: not before
    the colour's first month, not after the current month."""
    today = today or dt.date.today()
    last = min((end.year, end.month), (today.year, today.month))
    out: list[Month] = []
    for color in colors:
        first = catalog.FIRST_MONTH[color]
        y, m = max((start.year, start.month), first)
        while (y, m) <= last:
            out.append((color, y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def complete_months(
    wanted: Iterable[Month], warehouses: Sequence[Any], the_lake: lake.Lake
) -> set[Month]:
    """The months of ``wanted`` that every warehouse has loaded from the lake's clean data."""
    markers = [w.loaded_months() for w in warehouses]
    done: set[Month] = set()
    for color, year, month in wanted:
        key = (color, year, month)
        if not all(key in m for m in markers):
            continue
        quality_path = the_lake.clean_dir(color, year, month) / lake.QUALITY_FILE
        quality = lake.read_json(quality_path) if quality_path.exists() else None
        if all(sinks.marker_matches(m[key], quality) for m in markers):
            done.add(key)
    return done
