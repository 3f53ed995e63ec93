"""Regenerate docs/report.png: tlc-report's page over a synthetic lake, photographed by headless
Chromium.

    .venv/bin/python tools/report_screenshot.py   # needs Debian's chromium and PostgreSQL

Only synthetic data (tools/synthetic.py), nothing from ../shared: yellow 2009-01 to 2025-09 and
green 2013-08 on, at a two-thousandth of the TLC's monthly volumes (the 2020 drop included),
cleaned by the real clean stage and loaded into DuckDB and a throwaway PostgreSQL database.
Planted, so the picture shows each kind of anomaly: yellow 2017-05's tip_amount half empty,
green 2024-03 never loaded into PostgreSQL, yellow 2023-05 re-cleaned after its loads.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.domain import months  # noqa: E402
from pipeline.domain.months import MonthKey  # noqa: E402
from pipeline.lake.lake import local  # noqa: E402
from pipeline.observe import report  # noqa: E402
from pipeline.orchestration.loading import load_month  # noqa: E402
from pipeline.sinks.duckdb import DuckDBWarehouse  # noqa: E402
from pipeline.sinks.postgres import PgConn, PostgresWarehouse  # noqa: E402
from tests.support import browser  # noqa: E402
from tests.support import pg as pgserver  # noqa: E402
from tests.support.report_lake import clean_synthetic, reclean  # noqa: E402

SCALE = 2000  # one synthetic row for this many of the TLC's
LAST = (2025, 9)
SEASON = [0.97, 0.93, 1.06, 1.03, 1.04, 0.99, 0.94, 0.92, 0.99, 1.05, 0.99, 1.0]
# Millions of trips a month, roughly the TLC's: by year, and month by month where it moved.
YELLOW_YEAR = {2009: 14.0, 2010: 13.6, 2011: 14.6, 2012: 14.3, 2013: 14.1, 2014: 13.8,
               2015: 12.9, 2016: 11.6, 2017: 9.7, 2018: 8.8, 2019: 7.3, 2023: 3.2, 2024: 3.3,
               2025: 3.6}  # fmt: skip
YELLOW_MONTHS = {
    2020: [6.4, 6.3, 3.0, 0.24, 0.35, 0.55, 0.80, 1.0, 1.3, 1.7, 1.5, 1.5],
    2021: [1.4, 1.4, 1.9, 2.2, 2.5, 2.8, 2.8, 2.8, 2.9, 3.4, 3.3, 3.2],
    2022: [2.5, 3.0, 3.6, 3.6, 3.6, 3.6, 3.2, 3.2, 3.2, 3.7, 3.3, 3.4],
}
GREEN_YEAR = {2014: 1.4, 2015: 1.6, 2016: 1.3, 2017: 0.95, 2018: 0.75, 2019: 0.5, 2021: 0.08,
              2022: 0.07, 2023: 0.065, 2024: 0.055, 2025: 0.05}  # fmt: skip
GREEN_MONTHS = {
    2013: [0, 0, 0, 0, 0, 0, 0, 0.1, 0.3, 0.55, 0.75, 0.9],
    2020: [0.45, 0.4, 0.22, 0.035, 0.057, 0.063, 0.072, 0.081, 0.087, 0.095, 0.088, 0.083],
}
NULL_JUMP = MonthKey("yellow", 2017, 5)
NOT_IN_POSTGRES = MonthKey("green", 2024, 3)
RECLEANED = MonthKey("yellow", 2023, 5)


def volume(key: MonthKey) -> int:
    """Synthetic rows of the month (at least 40, so each rule has rows to count)."""
    by_year, by_month = (
        (YELLOW_YEAR, YELLOW_MONTHS) if key.color == "yellow" else (GREEN_YEAR, GREEN_MONTHS)
    )
    if key.year in by_month:
        millions = by_month[key.year][key.month - 1]
    else:
        millions = by_year[key.year] * SEASON[key.month - 1]
    return max(40, round(millions * 1e6 / SCALE))


def build(tmp: Path, duck: DuckDBWarehouse, pg: PostgresWarehouse) -> None:
    lake = local(tmp / "lake")
    keys = [MonthKey("yellow", *ym) for ym in months.span((2009, 1), LAST)]
    keys += [MonthKey("green", *ym) for ym in months.span((2013, 8), LAST)]
    for key in keys:
        if key == NULL_JUMP:
            clean_synthetic(lake, tmp / "raw", key, volume(key), None, "tip_amount", 0.5)
        else:
            clean_synthetic(lake, tmp / "raw", key, volume(key))
        load_month(lake, key, duck, "duckdb")
        if key != NOT_IN_POSTGRES:
            load_month(lake, key, pg, "postgres")
    reclean(lake, tmp / "raw2", RECLEANED, volume(RECLEANED), seed=1)


def main() -> None:
    out = REPO / "docs" / "report.png"
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, pgserver.server() as admin:
        tmpd = Path(tmp)
        database = pgserver.create_database(admin)
        try:
            conn = PgConn(admin.host, admin.port, database, admin.user, admin.password)
            duck = DuckDBWarehouse(tmpd / "warehouse.duckdb")
            pg = PostgresWarehouse(conn, "public")
            build(tmpd, duck, pg)
            page = tmpd / "report.html"
            written = report.write_report(
                local(tmpd / "lake"), {"duckdb": duck, "postgres": pg}, page
            )
            shot = browser.render(page, width=1280, height=1500, full_page=False)
            if shot.errors:
                raise SystemExit(f"the page logged errors: {shot.errors}")
            out.write_bytes(shot.png)
        finally:
            pgserver.drop_database(admin, database)
    print(f"{out}: {written.months} months, {len(written.anomalies)} anomalies, "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
