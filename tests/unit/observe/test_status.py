"""tlc-status's grid: how each cell's state is decided, and how the grid is drawn and dumped."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from pipeline.domain.errors import BadParameter
from pipeline.domain.months import MonthKey
from pipeline.observe import status
from pipeline.observe.status import Failure, Observed, State

TODAY = dt.date(2026, 11, 25)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def k(color: str, year: int, month: int) -> MonthKey:
    return MonthKey(color, year, month)


# --- the model ---------------------------------------------------------------------------------
def test_each_state_from_its_source_and_their_precedence():
    jan, feb, mar, apr, may = (k("green", 2021, m) for m in range(1, 6))
    observed = Observed(
        ledgers={"duckdb": {jan: 76_368, feb: 64_572}, "postgres": {jan: 76_368}},
        cleaned=frozenset({jan, feb, apr}),
        failures=[
            # a failed load of postgres only; a failed download holds up every sink
            Failure(feb, frozenset({"postgres"}), "LoadPostgres_feb", "FAILED"),
            Failure(mar, None, "DownloadMonth_mar", "DISABLED"),
            # luigid still remembers a failure of a month that has since been loaded
            Failure(jan, None, "DownloadMonth_jan", "FAILED"),
        ],
        unpublished=frozenset({may}),
    )
    grid = status.build(("green",), ("duckdb", "postgres"), (2021, 1), (2021, 6), observed, TODAY)
    state = {(key.month, sink): c.state for (key, sink), c in grid.cells.items()}
    assert state == {
        (1, "duckdb"): State.LOADED, (1, "postgres"): State.LOADED,
        (2, "duckdb"): State.LOADED, (2, "postgres"): State.FAILED,
        (3, "duckdb"): State.FAILED, (3, "postgres"): State.FAILED,
        (4, "duckdb"): State.NOT_LOADED, (4, "postgres"): State.NOT_LOADED,
        (5, "duckdb"): State.NOT_PUBLISHED, (5, "postgres"): State.NOT_PUBLISHED,
        (6, "duckdb"): State.NOT_LOADED, (6, "postgres"): State.NOT_LOADED,
    }  # fmt: skip
    assert grid.cells[jan, "duckdb"].rows == 76_368
    assert grid.cells[feb, "postgres"].failed_task == "LoadPostgres_feb"
    assert grid.cells[mar, "duckdb"].failed_task == "DownloadMonth_mar"
    assert grid.cells[apr, "duckdb"].cleaned is True
    assert grid.cells[k("green", 2021, 6), "duckdb"].cleaned is False
    assert grid.month_rows(feb) == 64_572  # loaded in one sink only: its rows


def test_an_unreadable_ledger_or_lake_is_unknown_not_empty():
    jan = k("yellow", 2021, 1)
    observed = Observed(ledgers={"duckdb": {jan: 10}, "postgres": None}, cleaned=None)
    grid = status.build(("yellow",), ("duckdb", "postgres"), (2021, 1), (2021, 2), observed, TODAY)
    assert grid.cells[jan, "duckdb"].state is State.LOADED
    assert grid.cells[jan, "postgres"].state is State.UNKNOWN
    assert grid.cells[k("yellow", 2021, 2), "postgres"].state is State.UNKNOWN
    assert grid.cells[jan, "duckdb"].cleaned is None


def test_grid_months_start_at_each_colours_first_month_and_stop_at_this_month():
    keys = status.grid_months(("yellow", "fhvhv"), (2019, 1), (2027, 6), TODAY)
    fhvhv = [key.ym for key in keys if key.color == "fhvhv"]
    yellow = [key.ym for key in keys if key.color == "yellow"]
    assert fhvhv[0] == (2019, 2)
    assert yellow[0] == (2019, 1)
    assert fhvhv[-1] == yellow[-1] == (2026, 11)


def test_publication_checks_ask_only_about_the_few_recent_months():
    keys = status.grid_months(("yellow", "green"), (2015, 1), (2026, 11), TODAY)
    loaded_october = {k("green", 2026, 9)}
    certain, ask = status.publication_checks(keys, loaded_october, TODAY, lag_days=60)
    # November has not ended: it cannot be out, no request needed.
    assert certain == {k("yellow", 2026, 11), k("green", 2026, 11)}
    # September and October ended less than 60 days ago; green September is loaded already.
    assert ask == [k("green", 2026, 10), k("yellow", 2026, 9), k("yellow", 2026, 10)]
    assert len(keys) > 200  # ... out of every month of the grid


def test_failures_from_luigids_task_list():
    families = {"LoadPostgres": frozenset({"postgres"}), "DownloadMonth": None}
    answer = {
        "LoadPostgres_green_2021_1_abc": {
            "name": "LoadPostgres", "status": "FAILED",
            "params": {"color": "green", "year": "2021", "month": "1"},
        },
        "DownloadMonth_yellow_2022_3_def": {
            "name": "DownloadMonth", "status": "DISABLED",
            "params": {"color": "yellow", "year": "2022", "month": "3"},
        },
        "LoadZones_duckdb_123": {"name": "LoadZones", "status": "FAILED", "params": {}},
        "Other_1": {"name": "DownloadMonth", "status": "FAILED", "params": {"x": "1"}},
    }  # fmt: skip
    assert status.failures_from(answer, families) == [
        Failure(k("green", 2021, 1), frozenset({"postgres"}), "LoadPostgres_green_2021_1_abc",
                "FAILED"),
        Failure(k("yellow", 2022, 3), None, "DownloadMonth_yellow_2022_3_def", "DISABLED"),
    ]  # fmt: skip
    assert status.failures_from({"num_tasks": 200_000}, families) == []  # luigid's "too many"


def test_defaults_follow_the_data():
    observed = Observed(
        ledgers={"duckdb": {k("fhv", 2017, 3): 1}}, cleaned=frozenset({k("green", 2016, 5)})
    )
    assert status.default_colors(observed, ("yellow",)) == ("green", "fhv")
    assert status.default_colors(Observed(ledgers={"duckdb": {}}), ("yellow",)) == ("yellow",)
    assert status.default_span(observed, ("green", "fhv"), TODAY) == ((2016, 5), (2026, 11))
    assert status.default_span(observed, ("yellow",), TODAY) == ((2026, 1), (2026, 11))


@pytest.mark.parametrize("text", ["2021-13", "2021-1", "21-01", "2021/01", ""])
def test_parse_month_refuses_anything_but_yyyy_mm(text):
    with pytest.raises(BadParameter, match=r"--start .*YYYY-MM"):
        status.parse_month(text, "--start")


def test_parse_list_names_the_choices():
    assert status.parse_list("green, yellow,green", ("yellow", "green"), "--colors") == (
        "green",
        "yellow",
    )
    with pytest.raises(BadParameter, match="--colors 'red': expected a comma list of yellow"):
        status.parse_list("red", ("yellow", "green"), "--colors")


# --- rendering ---------------------------------------------------------------------------------
def full_grid(sinks: tuple[str, ...]) -> status.Grid:
    """Four colours, 2015 to this month, every state somewhere."""
    colors = ("yellow", "green", "fhv", "fhvhv")
    keys = status.grid_months(colors, (2015, 1), (2026, 11), TODAY)
    loaded = {key: 1_234_567 for key in keys if key.year < 2024}
    observed = Observed(
        ledgers={s: loaded for s in sinks} | {sinks[-1]: None},
        cleaned=frozenset(key for key in keys if key.year < 2025),
        failures=[Failure(k("green", 2024, 2), None, "DownloadMonth_x", "FAILED")],
        unpublished=frozenset(key for key in keys if key.ym >= (2026, 10)),
    )
    return status.build(colors, sinks, (2015, 1), (2026, 11), observed, TODAY)


@pytest.mark.parametrize("sinks", [("duckdb",), ("duckdb", "postgres", "bigquery")])
def test_text_fits_80_columns_and_has_no_escapes_for_a_pipe(sinks):
    text = status.render_text(full_grid(sinks), ansi=False)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "\x1b" not in text
    rows = [
        line for line in text.splitlines() if re.match(r"(yellow|green|fhv|fhvhv) +\d{4}", line)
    ]
    assert len(rows) == 12 + 12 + 12 + 8  # one per colour-year: 2015..2026, fhvhv from 2019


def test_text_cells_one_character_per_sink():
    text = status.render_text(full_grid(("duckdb", "postgres", "bigquery")))
    lines = text.splitlines()
    assert lines[:2] == [
        "yellow, green, fhv, fhvhv: 2015-01 to 2026-11",
        "each month: one character per sink: duckdb, postgres, bigquery",
    ]
    assert lines[3].split() == [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "rows",
    ]  # fmt: skip
    by_label = {line[:11].strip(): line for line in lines[4:] if line[:1].isalpha()}
    # loaded in duckdb and postgres; bigquery's ledger could not be read
    assert by_label["yellow 2015"] == "yellow 2015 " + "##? " * 12 + "   14.8M"
    # 2024: in the lake, not loaded; February's download failed
    assert by_label["green 2024"][12:28] == "++? !!! ++? ++? "
    # 2025: not loaded; 2026: October and November not published yet, December blank
    assert by_label["fhv 2026"] == "fhv 2026    " + "..? " * 9 + "--- ---"
    assert "fhvhv 2018" not in by_label
    assert by_label["fhvhv 2019"][12:16] == "    "
    assert "# loaded   + in the lake, not loaded   . not loaded   - not published yet" in lines


def test_ansi_colours_only_when_asked():
    grid = full_grid(("duckdb", "postgres"))
    plain = status.render_text(grid, ansi=False)
    coloured = status.render_text(grid, ansi=True)
    assert "\x1b[32m#\x1b[0m" in coloured
    assert "\x1b[1;31m!\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_json_one_object_per_colour_month_sink():
    grid = full_grid(("duckdb", "postgres"))
    text = status.render_json(grid)
    cells = json.loads(text)
    assert (
        len(cells)
        == len(grid.cells)
        == 2 * len(status.grid_months(grid.colors, grid.first, grid.last, TODAY))
    )
    assert len(text.splitlines()) == len(cells) + 2  # one object a line, for line tools too
    assert cells[0] == {
        "color": "yellow", "year": 2015, "month": 1, "sink": "duckdb", "state": "loaded",
        "rows": 1_234_567, "cleaned": True, "failed_task": None,
    }  # fmt: skip
    assert cells[1]["sink"] == "postgres"
    assert cells[1]["state"] == "unknown"
    failed = [c for c in cells if c["state"] == "failed"]
    assert {(c["color"], c["year"], c["month"], c["sink"]) for c in failed} == {
        ("green", 2024, 2, "duckdb"),
        ("green", 2024, 2, "postgres"),
    }
    assert {c["state"] for c in cells} == {
        "loaded", "failed", "not_published", "not_loaded", "unknown",
    }  # fmt: skip


def test_empty_grid():
    grid = status.build(("yellow",), ("duckdb",), (2030, 1), (2030, 2), Observed({}), TODAY)
    assert status.render_json(grid) == "[]\n"
    assert "(no months in this range)" in status.render_text(grid)


def test_human_rows():
    assert [status.human(n) for n in (0, 999, 76_368, 14_814_804, 2_100_000_000)] == [
        "0", "999", "76.4k", "14.8M", "2.1G",
    ]  # fmt: skip
