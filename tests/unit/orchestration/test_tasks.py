"""Task parameters are checked when a task is made, before anything runs."""

from __future__ import annotations

import pytest

from pipeline.orchestration.tasks import CleanParquet, LoadDuckDB


def test_month_before_a_colour_existed_is_rejected_at_once():
    with pytest.raises(ValueError, match="green trips start in 2013-08"):
        LoadDuckDB(color="green", year=2013, month=7)
    with pytest.raises(ValueError, match=r"month must be 1\.\.12"):
        CleanParquet(color="yellow", year=2020, month=13)


def test_bigger_months_are_cleaned_and_loaded_first():
    """Luigi starts the runnable task of highest priority first: a backfill cleans and loads
    its FHVHV months before yellow's, FHV's and green's, so it does not end on one big month."""
    from pipeline.orchestration.tasks import LoadPostgres

    order = ["fhvhv", "yellow", "fhv", "green"]
    for family in (CleanParquet, LoadDuckDB, LoadPostgres):
        got = sorted(order, key=lambda c: -family(color=c, year=2020, month=1).priority)
        assert got == order, family


def test_downloads_go_smallest_first_and_ahead_of_any_clean_or_load():
    """The first months arrive at once, so the second worker is not idle while an FHVHV month
    downloads; a free download slot is never left for a clean."""
    from pipeline.domain import catalog
    from pipeline.orchestration.tasks import DownloadMonth, LoadPostgres

    order = ["green", "fhv", "yellow", "fhvhv"]
    got = sorted(order, key=lambda c: -DownloadMonth(color=c, year=2020, month=1).priority)
    assert got == order
    lowest_download = min(DownloadMonth(color=c, year=2020, month=1).priority for c in order)
    highest_other = max(
        family(color=c, year=2020, month=1).priority
        for family in (CleanParquet, LoadDuckDB, LoadPostgres)
        for c in catalog.COLORS
    )
    assert lowest_download > highest_other
