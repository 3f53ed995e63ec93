"""tlc-cron's choice of months: the publication lag and the catch-up window."""

from __future__ import annotations

import datetime as dt

from pipeline.cli.cron import expected_months


def test_expected_months_respect_the_publication_lag():
    today = dt.date(2026, 11, 24)
    assert expected_months(today, 60, 3) == [(2026, 6), (2026, 7), (2026, 8)]
    assert expected_months(today, 0, 2) == [(2026, 9), (2026, 10)]
    assert expected_months(dt.date(2026, 1, 5), 4, 2) == [(2025, 11), (2025, 12)]
    assert expected_months(dt.date(2026, 1, 5), 5, 1) == [(2025, 11)]
