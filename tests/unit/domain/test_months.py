"""MonthKey and the month arithmetic: bounds tile the calendar, next/add/span agree."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import catalog, months
from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey

yms = st.tuples(st.integers(2009, 2100), st.integers(1, 12))


@given(yms)
def test_bounds_tile_the_calendar(ym: tuple[int, int]):
    start, end = months.bounds(*ym)
    assert start == dt.datetime(ym[0], ym[1], 1)
    assert (end - dt.timedelta(days=1)).month == ym[1]
    assert months.bounds(*months.add(ym, 1))[0] == end


@given(yms, st.integers(-400, 400))
def test_add_is_arithmetic_on_month_indexes(ym: tuple[int, int], n: int):
    y, m = months.add(ym, n)
    assert 1 <= m <= 12
    assert (y * 12 + m) - (ym[0] * 12 + ym[1]) == n
    assert months.add((y, m), -n) == ym


@given(yms, st.integers(0, 60))
def test_span_lists_every_month_once_in_order(first: tuple[int, int], n: int):
    last = months.add(first, n)
    got = list(months.span(first, last))
    assert len(got) == n + 1
    assert got[0] == first
    assert got[-1] == last
    assert got == sorted(set(got))
    assert list(months.span(last, first)) == ([first] if n == 0 else [])


@given(st.sampled_from(catalog.COLORS), yms)
def test_a_key_exists_only_for_published_months(color: str, ym: tuple[int, int]):
    if ym < catalog.FIRST_MONTH[color]:
        with pytest.raises(BadParameter, match="never existed"):
            MonthKey(color, *ym)
        return
    key = MonthKey(color, *ym)
    assert key.label == f"{color} {ym[0]:04d}-{ym[1]:02d}"
    assert key.yyyymm == f"{ym[0]:04d}{ym[1]:02d}"
    assert key.bounds() == months.bounds(*ym)
    assert key.next().ym == months.add(ym, 1)
    assert key < key.next()


@pytest.mark.parametrize(("args", "why"), [
    (("purple", 2021, 1), "unknown colour"),
    (("green", 2021, 13), "month must be 1..12"),
    (("green", 2021, 0), "month must be 1..12"),
    (("fhvhv", 2019, 1), "fhvhv trips start in 2019-02"),
    (("yellow", 21, 1), "year must be four digits"),
])  # fmt: skip
def test_impossible_months_are_bad_parameters(args: tuple[str, int, int], why: str):
    with pytest.raises(BadParameter, match=why):
        MonthKey(*args)
