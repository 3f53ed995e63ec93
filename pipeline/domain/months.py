"""The month key: what every stage, target and ledger row is about.

A ``MonthKey`` is a colour and a calendar month the TLC publishes (or will): made only through
``catalog.check_month``, so a month 13 or an FHVHV month before 2019-02 cannot exist as one.
All month arithmetic lives here: bounds, the next and previous month, ranges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.domain import catalog

YearMonth = tuple[int, int]


@dataclass(frozen=True, order=True)
class MonthKey:
    color: str
    year: int
    month: int

    def __post_init__(self) -> None:
        catalog.check_month(self.color, self.year, self.month)

    @property
    def ym(self) -> YearMonth:
        return (self.year, self.month)

    @property
    def label(self) -> str:
        """``green 2021-01``: how messages and logs name the month."""
        return f"{self.color} {self.year:04d}-{self.month:02d}"

    @property
    def yyyymm(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        return bounds(self.year, self.month)

    def next(self) -> MonthKey:
        return MonthKey(self.color, *add(self.ym, 1))

    def __str__(self) -> str:
        return self.label


def bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a month, as naive local timestamps like the TLC's own."""
    return dt.datetime(year, month, 1), dt.datetime(*add((year, month), 1), 1)


def add(ym: YearMonth, months: int) -> YearMonth:
    """The month ``months`` after (or before, if negative) ``ym``."""
    index = ym[0] * 12 + ym[1] - 1 + months
    return index // 12, index % 12 + 1


def span(first: YearMonth, last: YearMonth) -> Iterator[YearMonth]:
    """Every month from ``first`` to ``last``, both included (none if last < first)."""
    ym = first
    while ym <= last:
        yield ym
        ym = add(ym, 1)


def of(day: dt.date) -> YearMonth:
    return (day.year, day.month)
