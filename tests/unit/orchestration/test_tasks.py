"""Task parameters are checked when a task is made, before anything runs."""

from __future__ import annotations

import pytest

from pipeline.orchestration.tasks import CleanParquet, LoadDuckDB


def test_month_before_a_colour_existed_is_rejected_at_once():
    with pytest.raises(ValueError, match="green trips start in 2013-08"):
        LoadDuckDB(color="green", year=2013, month=7)
    with pytest.raises(ValueError, match=r"month must be 1\.\.12"):
        CleanParquet(color="yellow", year=2020, month=13)


def test_bigger_months_are_scheduled_first():
    """Luigi starts the runnable task of highest priority first: a backfill starts its FHVHV
    months' chains before yellow's, FHV's and green's, so it does not end on one big month."""
    from pipeline.orchestration.tasks import DownloadMonth, LoadPostgres

    order = ["fhvhv", "yellow", "fhv", "green"]
    for family in (DownloadMonth, CleanParquet, LoadDuckDB, LoadPostgres):
        got = sorted(order, key=lambda c: -family(color=c, year=2020, month=1).priority)
        assert got == order, family
