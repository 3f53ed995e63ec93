"""The quality report's checks on crafted months and ledgers, its reading of crafted
_quality.json files with DuckDB, and the page it draws (without a browser: the browser test is
tests/integration/observe/test_report_browser.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import months, quality
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local
from pipeline.observe import report
from pipeline.observe.report import LEDGER, NULLS, ROWS, SINKS, MonthQuality, Thresholds
from pipeline.sinks.base import LoadRecord
from tests.support.data import sample_report

TH = Thresholds()


def month(
    color: str, ym: tuple[int, int], rows: int, nulls: dict[str, int] | None = None, sha="cd"
) -> MonthQuality:
    return MonthQuality(
        MonthKey(color, *ym), rows + 10, rows, {"passenger_count_zero": 10}, nulls or {},
        rows * 20, sha * 32, rows * 30,
    )  # fmt: skip


def series(values: list[int], start=(2019, 1), color="yellow") -> list[MonthQuality]:
    return [month(color, months.add(start, i), v) for i, v in enumerate(values)]


def record(q: MonthQuality, rows: int | None = None, sha: str | None = None) -> LoadRecord:
    return LoadRecord(
        "month", f"{q.key.color}_trips", q.key.color, q.key.year, q.key.month, q.rows_in,
        q.rows_out if rows is None else rows, {}, "ab" * 32,
        q.clean_sha256 if sha is None else sha, "0", dt.datetime(2026, 1, 1), 1.5,
    )  # fmt: skip


def flagged(found: list[report.Anomaly]) -> list[tuple[str, str]]:
    return [(a.key.label, a.rule) for a in found]


# -- rows far from the trailing median -----------------------------------------------------------
def test_the_2020_drop_is_flagged_and_an_ordinary_year_is_not():
    # yellow 2019-01 .. 2020-06 in thousands of rows, as the TLC's files have them (rounded)
    real = [7667, 7050, 7832, 7433, 7565, 6941, 6310, 6074, 6567, 7213, 6878, 6896,
            6405, 6300, 3007, 238, 349, 549]  # fmt: skip
    found = report.row_anomalies(series([v * 1000 for v in real]))
    assert flagged(found) == [("yellow 2020-03", ROWS), ("yellow 2020-04", ROWS),
                              ("yellow 2020-05", ROWS), ("yellow 2020-06", ROWS)]  # fmt: skip
    assert "0.44x the median 6,887,000 of the 12 loaded months of the 12 before" in found[0].detail


def test_no_verdict_without_enough_history_and_gaps_shrink_the_window():
    assert report.row_anomalies(series([1000, 100_000])) == []  # one month before: no verdict
    # a month whose window holds only 2 loaded months (the rest are missing) is not judged
    sparse = [month("green", (2019, 1), 1000), month("green", (2019, 6), 1000),
              month("green", (2020, 5), 5)]  # fmt: skip
    assert report.row_anomalies(sparse) == []


def test_each_colour_is_judged_against_itself():
    mixed = series([7_000_000] * 6) + series([60_000] * 5 + [61_000], color="green")
    assert report.row_anomalies(mixed) == []


@settings(max_examples=60, deadline=None)
@given(
    base=st.integers(100, 10_000_000),
    wobble=st.lists(st.floats(0.75, 1.25), min_size=4, max_size=30),
    where=st.integers(3, 29),
    factor=st.sampled_from([4.0, 0.24]),
)
def test_a_steady_series_is_quiet_and_one_jump_in_it_is_the_only_flag(base, wobble, where, factor):
    values = [round(base * w) for w in wobble]
    assert report.row_anomalies(series(values)) == []  # ±25 % stays inside the band of 2
    where = min(where, len(values) - 1)
    values[where] = round(values[where] * factor)  # 4 times up, or down to less than a quarter
    found = report.row_anomalies(series(values))
    assert flagged(found) == [(series(values)[where].key.label, ROWS)]


# -- null share jumps ----------------------------------------------------------------------------
def nulls_series(shares: list[float], column="tip_amount", rows=10_000) -> list[MonthQuality]:
    return [
        month("yellow", months.add((2019, 1), i), rows, {column: round(s * rows), "vendor_id": 0})
        for i, s in enumerate(shares)
    ]


def test_a_column_going_empty_is_flagged_and_a_wobble_is_not():
    wobble = [0.05, 0.07, 0.04, 0.09, 0.06, 0.08, 0.05]
    assert report.null_anomalies(nulls_series(wobble)) == []
    found = report.null_anomalies(nulls_series([*wobble, 0.95, 0.06]))
    assert flagged(found) == [("yellow 2019-08", NULLS)]
    assert found[0].column == "tip_amount"
    assert (
        found[0].detail
        == "tip_amount: 95.0% null, the median of the 7 loaded months before was 6.0%"
    )
    # a column that fills up (the zone ids of 2016-07) is not a problem
    assert report.null_anomalies(nulls_series([1.0] * 5 + [0.0] * 3)) == []


@settings(max_examples=60, deadline=None)
@given(
    shares=st.lists(st.floats(0.0, 0.1), min_size=4, max_size=24),
    where=st.integers(3, 23),
    jump=st.floats(0.31, 0.9),
)
def test_one_jump_of_a_third_is_the_only_null_flag(shares, where, jump):
    assert report.null_anomalies(nulls_series(shares)) == []
    where = min(where, len(shares) - 1)
    shares[where] += jump
    found = report.null_anomalies(nulls_series(shares))
    assert flagged(found) == [(nulls_series(shares)[where].key.label, NULLS)]


# -- sinks and ledgers ---------------------------------------------------------------------------
def test_a_month_missing_in_one_sink_and_a_month_in_none_are_flagged():
    a, b, c = series([1000, 1000, 1000])
    ledgers = {
        "duckdb": {a.key: record(a), b.key: record(b)},
        "postgres": {a.key: record(a)},
    }
    found = report.sink_anomalies([a, b, c], ledgers)
    assert [(x.key, x.detail) for x in found] == [
        (b.key, "loaded in duckdb; missing in postgres"),
        (c.key, "cleaned in the lake, loaded in none of duckdb, postgres"),
    ]
    assert report.sink_anomalies([a, b, c], {}) == []  # no sink configured: nothing to compare


def test_a_ledger_row_that_disagrees_with_the_lake_is_flagged():
    a, b, c = series([1000, 2000, 3000])
    orphan = month("yellow", (2018, 1), 5)
    ledgers = {
        "duckdb": {a.key: record(a), b.key: record(b, rows=1999), orphan.key: record(orphan)},
        "bigquery": {a.key: record(a), b.key: record(b), c.key: record(c, sha="ee" * 32)},
    }
    found = report.ledger_anomalies([a, b, c], ledgers)
    assert flagged(found) == [("yellow 2018-01", LEDGER), ("yellow 2019-02", LEDGER),
                              ("yellow 2019-03", LEDGER)]  # fmt: skip
    details = [x.detail for x in found]
    assert details[0] == "duckdb: loaded, but the lake has no clean month (_quality.json) for it"
    assert details[1] == "duckdb ledger vs _quality.json: rows out 1,999 vs 2,000"
    assert details[2].startswith("bigquery ledger vs _quality.json: clean digest eeeeeeeeeeee…")


def test_find_anomalies_gathers_every_check_sorted_by_month():
    qs = series([1000] * 4 + [10])
    ledgers = {"duckdb": {q.key: record(q) for q in qs[1:]}}
    found = report.find_anomalies(qs, ledgers)
    assert flagged(found) == [("yellow 2019-01", SINKS), ("yellow 2019-05", ROWS)]


# -- reading the lake with DuckDB ---------------------------------------------------------------
def write_quality(root: Path, doc: dict) -> None:
    folder = root / f"clean/{doc['color']}/year={doc['year']:04d}/month={doc['month']:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_quality.json").write_text(json.dumps(doc))


def test_duckdb_reads_every_published_report_of_a_folder_lake(tmp_path: Path):
    green = sample_report()
    parts = [{"name": "part-0.a.parquet", "rows": 1, "bytes": 10, "sha256": "a"},
             {"name": "part-1.b.parquet", "rows": 2, "bytes": 32, "sha256": "b"}]  # fmt: skip
    nulls = {"airport_fee": 5, "pu_location_id": 0}
    yellow = {**green, "color": "yellow", "month": 2, "source_manifest": None, "nulls": nulls,
              "files": parts}  # fmt: skip
    write_quality(tmp_path, green)
    write_quality(tmp_path, yellow)
    (tmp_path / "clean/green/year=2021/month=02").mkdir(parents=True)  # unpublished: no marker
    (tmp_path / "clean/green/year=2021/month=02/part-0.x.parquet").write_bytes(b"PAR1")
    lake = local(tmp_path)
    objects = report.quality_objects(lake)
    got = report.read_quality(lake, objects)
    assert [q.key.label for q in got] == ["green 2021-01", "yellow 2021-02"]
    g, y = got
    assert (g.rows_in, g.rows_out, g.source_bytes) == (76_518, 76_368, 1_333_518)
    assert dict(g.rows_dropped) == green["rows_dropped"]
    assert (g.clean_bytes, g.clean_sha256) == (1_200_000, quality.clean_sha256(green))
    assert (y.source_bytes, y.clean_bytes, y.clean_sha256) == (None, 42, "a,b")
    assert dict(y.nulls) == {"airport_fee": 5, "pu_location_id": 0}
    assert y.where.endswith("clean/yellow/year=2021/month=02/_quality.json")


def test_a_report_that_is_not_one_fails_with_one_line_naming_the_lake(tmp_path: Path):
    write_quality(tmp_path, sample_report())
    bad = tmp_path / "clean/yellow/year=2021/month=03/_quality.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    lake = local(tmp_path)
    with pytest.raises(PipelineError) as e:
        report.read_quality(lake, report.quality_objects(lake))
    assert "\n" not in str(e.value)
    assert "quality reports could not be read" in str(e.value)


def test_an_empty_lake_has_nothing_to_report(tmp_path: Path):
    with pytest.raises(PipelineError, match="no clean months in the lake, nothing to report"):
        report.write_report(local(tmp_path), {}, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# -- the page ------------------------------------------------------------------------------------
def test_the_page_is_self_contained_and_lists_each_anomaly(tmp_path: Path):
    qs = series([1000] * 4 + [10])
    ledgers = {"duckdb": {q.key: record(q) for q in qs}}
    found = report.find_anomalies(qs, ledgers)
    page = report.render(qs, ledgers, found, "0123abcd", "/lake", now=dt.datetime(2026, 11, 25))
    assert not re.search(r"<script[^>]*\ssrc=", page)  # plotly.js is inlined, not fetched
    for chart in ("chart-rows", "chart-dropped", "chart-nulls-yellow", "chart-sizes"):
        assert f'id="{chart}"' in page
    assert "yellow 2019-05" in page
    assert "1 anomaly<" in page
    assert "below 1/2 or above 2x the median" in page  # the thresholds are stated
    out = tmp_path / "r.html"
    out.write_text(page)
    assert report.state_of(out) == "0123abcd"
    assert report.state_of(tmp_path / "missing.html") is None


def test_the_fingerprint_changes_with_the_ledgers_and_the_markers(tmp_path: Path):
    write_quality(tmp_path, sample_report())
    lake = local(tmp_path)
    objects = report.quality_objects(lake)
    q = report.read_quality(lake, objects)[0]
    empty = report.fingerprint(objects, {})
    loaded = report.fingerprint(objects, {"duckdb": {q.key: record(q)}})
    assert empty != loaded
    assert loaded == report.fingerprint(objects, {"duckdb": {q.key: record(q)}})
    write_quality(tmp_path, {**sample_report(), "month": 2})
    assert report.fingerprint(report.quality_objects(lake), {}) != empty
