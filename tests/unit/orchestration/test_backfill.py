"""Backfill planning: exactly the months asked for that exist, each once; colours checked."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import catalog
from pipeline.orchestration import backfill


# --- planning ---------------------------------------------------------------------------------
@given(
    start=st.dates(dt.date(2008, 1, 1), dt.date(2027, 12, 1)),
    span=st.integers(0, 40),
    colors=st.lists(st.sampled_from(catalog.COLORS), min_size=1, max_size=4, unique=True),
)
def test_backfill_months_are_exact(start: dt.date, span: int, colors: list[str]):
    end_index = start.year * 12 + start.month - 1 + span
    end = dt.date(end_index // 12, end_index % 12 + 1, 1)
    today = dt.date(2026, 11, 24)
    got = [(k.color, k.year, k.month) for k in backfill.wanted(colors, start, end, today)]
    assert len(got) == len(set(got))  # no month twice
    for color, y, m in got:
        assert catalog.FIRST_MONTH[color] <= (y, m) <= (today.year, today.month)
        assert (start.year, start.month) <= (y, m) <= (end.year, end.month)
    for color in colors:  # and none missing in between
        ms = [y * 12 + m for c, y, m in got if c == color]
        assert ms == list(range(ms[0], ms[0] + len(ms))) if ms else True


def test_colors_are_checked():
    assert backfill.parse_colors("yellow, green") == ["yellow", "green"]
    with pytest.raises(ValueError, match="comma list"):
        backfill.parse_colors("yellow,purple")
