"""The report in a real browser: Debian's headless Chromium opens the file from disk with the
network refused; nothing errs, every chart drew its marks, and the page is not blank."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local
from pipeline.observe import report
from pipeline.orchestration.loading import load_month
from pipeline.sinks.duckdb import DuckDBWarehouse
from tests.support import browser
from tests.support.report_lake import clean_into, clean_synthetic

pytestmark = pytest.mark.browser


def test_the_report_renders_offline_with_every_chart_drawn(tlc: Path, tmp_path: Path):
    browser.require_chromium()
    lake = local(tmp_path / "lake")
    rows = [6000, 5800, 6100, 6300, 6000, 6200, 5700, 5600, 2500, 250, 350, 550]
    keys = [MonthKey("yellow", 2019 + (6 + i) // 12, (6 + i) % 12 + 1) for i in range(12)]
    for key, n in zip(keys, rows, strict=True):
        clean_synthetic(lake, tmp_path / "raw", key, n)
    green = MonthKey("green", 2021, 1)  # a real month among the synthetic ones
    clean_into(lake, tlc / "months" / "green_tripdata_2021-01.parquet", green)
    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    for key in [*keys[:-1], green]:  # the last yellow month cleaned, never loaded
        load_month(lake, key, duck, "duckdb")
    out = tmp_path / "report.html"
    written = report.write_report(lake, {"duckdb": duck}, out)
    assert {a.rule for a in written.anomalies} == {report.ROWS, report.SINKS}

    page = browser.render(out)
    assert page.errors == []
    assert page.requests == []  # opens offline: nothing fetched from anywhere
    charts = ["chart-rows", "chart-dropped", "chart-nulls-yellow", "chart-nulls-green",
              "chart-sizes"]  # fmt: skip
    assert sorted(page.marks) == sorted(charts)
    rows = page.marks["chart-rows"]
    assert rows["lines"] == 1  # yellow's; green's lone month has no line to draw ...
    assert rows["points"] == 13 + len(written.anomalies)  # ... but a point, like every month,
    # and each anomaly is a marker
    assert page.marks["chart-nulls-yellow"]["heatmaps"] == 1
    assert page.marks["chart-nulls-green"]["heatmaps"] == 1
    assert page.marks["chart-dropped"]["lines"] >= 2
    assert page.marks["chart-sizes"]["lines"] >= 2  # yellow's clean parquet and load seconds

    shot = Path(os.environ.get("TLC_REPORT_SHOT", tmp_path / "report.png"))
    shot.write_bytes(page.png)
    variance, inked = browser.pixel_spread(page.png)
    assert variance > 200, (variance, shot)
    assert inked > 0.02, (inked, shot)
