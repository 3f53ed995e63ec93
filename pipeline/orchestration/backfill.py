"""Which colour-month pairs a backfill must still run, decided in bulk.

A 10-year backfill of four colours is 480 months. Asking each month's targets whether they
are complete means 480 times (sinks) marker reads, which is a DuckDB open, a Postgres connection
or a BigQuery request each time. Instead, each sink lists all its load markers once
(``loaded_months``), and each month's ledger row is compared with its ``_quality.json`` in the
lake, as the month's own target would do (``LoadRecord.matches``), read in bulk.

luigi.tools.range is not used. RangeMonthly wants a task with a single MonthParameter, but
ours take ``--year``/``--month``, as the card's command does. Its ``months_back`` default of
13 would also silently drop older months of a long backfill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pipeline.domain import catalog, months
from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import Lake
from pipeline.sinks.base import Sink


def parse_colors(text: str) -> list[str]:
    colors = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in colors if c not in catalog.COLORS]
    if unknown or not colors:
        raise BadParameter(f"--colors {text!r}: expected a comma list of {catalog.COLORS}")
    return colors


def wanted(
    colors: Sequence[str], start: dt.date, end: dt.date, today: dt.date | None = None
) -> list[MonthKey]:
    """Every colour-month from ``start`` to ``end`` (inclusive) that can exist: not before
    the colour's first month, not after the current month."""
    last = min(months.of(end), months.of(today or dt.date.today()))
    return [
        MonthKey(color, *ym)
        for color in colors
        for ym in months.span(max(months.of(start), catalog.FIRST_MONTH[color]), last)
    ]


def complete_months(keys: Iterable[MonthKey], sinks: Sequence[Sink], lake: Lake) -> set[MonthKey]:
    """The months of ``keys`` that every sink has loaded from the lake's clean data: one
    ledger query per sink, and the lake's quality reports in bulk (one listing per colour on
    GCS, whose marker objects carry their digest)."""
    ledgers = [s.loaded_months() for s in sinks]
    candidates = [k for k in keys if all(k in ledger for ledger in ledgers)]
    digests = lake.quality_digests(candidates)
    return {
        key
        for key in candidates
        if all(ledger[key].matches_digest(digests.get(key)) for ledger in ledgers)
    }
