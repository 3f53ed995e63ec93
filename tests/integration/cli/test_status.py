"""The real `tlc-status` command: real green months loaded into DuckDB and PostgreSQL, a month
failed in a real luigid, and the TLC mirror asked about the recent months only."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from pipeline.domain import months
from pipeline.domain.months import MonthKey
from pipeline.observe.status import human
from pipeline.orchestration import config
from tests.support.fixtures import REPO, PipelineEnv
from tests.support.lakes import clean_into
from tests.support.luigid import Luigid
from tests.support.tlc_server import RefusedPorts

BIN = Path(sys.executable).parent


def tlc_status(env: PipelineEnv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "tlc-status"), *args],
        env=env.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_grid_and_json_of_real_loads_and_a_failure_in_luigid(
    pg_env: PipelineEnv, luigid: Luigid, tlc: Path
):
    env = pg_env
    env.configure(
        core={"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port},
        pipeline={"sinks": ["duckdb", "postgres"]},
    )
    green = tlc / "months"
    october = clean_into(
        green / "green_tripdata_2020-10.csv.gz", "csv.gz", MonthKey("green", 2020, 10), env.lake
    )
    january = clean_into(
        green / "green_tripdata_2021-01.parquet", "parquet", MonthKey("green", 2021, 1), env.lake
    )
    rows_october = october.load(config.sink("duckdb"), "duckdb")
    assert october.load(config.sink("postgres"), "postgres") == rows_october
    rows_january = january.load(config.sink("duckdb"), "duckdb")  # PostgreSQL: not yet
    assert rows_january == 76_368

    # February fails for real: the TLC's HTML error page served as its parquet.
    bad = tlc / "bad" / "yellow_tripdata_2022-01.html-error-page.parquet"
    env.server.publish_month("green", 2021, 2, bad, "parquet")
    run = subprocess.run(
        [str(BIN / "luigi"), "--module", "pipeline", "DownloadMonth", "--color", "green",
         "--year", "2021", "--month", "2"],
        env=env.env(), cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 30, run.stderr[-3000:]
    failed = luigid.tasks("FAILED")
    assert [t["name"] for t in failed.values()] == ["DownloadMonth"]

    heads = len(env.server.heads)  # the run's own publication checks
    args = ("--colors", "green", "--start", "2020-10", "--end", "2021-04")
    text = tlc_status(env, *args)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[:2] == [
        "green: 2020-10 to 2021-04",
        "each month: one character per sink: duckdb, postgres",
    ]
    assert "\x1b" not in text.stdout  # a pipe gets plain text
    assert lines[4] == "green 2020 " + "    " * 9 + "##  ..  ..  " + human(rows_october).rjust(8)
    jan_to_apr = "#+  !!  ..  ..  "  # PostgreSQL: January only in the lake; February failed
    assert lines[5] == "green 2021 " + jan_to_apr + "    " * 8 + human(rows_january).rjust(8)
    assert max(len(line) for line in lines) <= 80

    as_json = tlc_status(env, *args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    cells = {(c["year"], c["month"], c["sink"]): c for c in json.loads(as_json.stdout)}
    assert len(cells) == 7 * 2
    assert cells[2021, 1, "duckdb"] == {
        "color": "green", "year": 2021, "month": 1, "sink": "duckdb", "state": "loaded",
        "rows": 76_368, "cleaned": True, "failed_task": None,
    }  # fmt: skip
    assert cells[2020, 10, "postgres"]["rows"] == rows_october
    assert (cells[2021, 1, "postgres"]["state"], cells[2021, 1, "postgres"]["cleaned"]) == (
        "not_loaded",
        True,
    )
    for sink in ("duckdb", "postgres"):
        assert cells[2021, 2, sink]["state"] == "failed"
        assert cells[2021, 2, sink]["failed_task"] == next(iter(failed))
        assert (cells[2021, 3, sink]["state"], cells[2021, 3, sink]["cleaned"]) == (
            "not_loaded",
            False,
        )
    assert env.server.heads[heads:] == []  # no month here is recent: the source is not asked

    # luigid down: no failures to show, no error, no wait.
    luigid.stop()
    down = tlc_status(env, *args)
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines()[5].startswith("green 2021 #+  ..  ..  ..  ")
    assert down.stderr == ""


def test_recent_months_not_published_yet_with_a_head_for_each_recent_month_only(
    env: PipelineEnv, tlc: Path, refused_port: RefusedPorts
):
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": refused_port()})
    today = dt.date.today()
    this_month = months.of(today)
    # The months that ended less than [cron] publication_lag_days (60) ago: one or two.
    recent = [
        ym
        for ym in (months.add(this_month, -1), months.add(this_month, -2))
        if today < dt.date(*months.add(ym, 1), 1) + dt.timedelta(days=60)
    ]
    # The mirror has green's last month already (the TLC was quick); nothing else is out.
    env.server.publish_month(
        "green", *recent[0], tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    start = months.add(this_month, -4)
    run = tlc_status(env, "--colors", "green,yellow", "--start", f"{start[0]}-{start[1]:02d}",
                     "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    state = {(c["color"], (c["year"], c["month"])): c["state"] for c in json.loads(run.stdout)}
    assert len(state) == 2 * 5
    for color in ("green", "yellow"):
        assert state[color, this_month] == "not_published"  # not ended: no request needed
        assert state[color, start] == "not_loaded"  # long out: not asked either
        for ym in recent:
            published = color == "green" and ym == recent[0]
            assert state[color, ym] == ("not_loaded" if published else "not_published")
    assert sorted(env.server.heads) == sorted(
        f"/trip-data/{color}_tripdata_{y:04d}-{m:02d}.parquet"
        for color in ("green", "yellow")
        for y, m in recent
    )


def test_defaults_without_any_data_come_from_the_configuration(
    env: PipelineEnv, refused_port: RefusedPorts
):
    env.configure(
        core={"scheduler_host": "127.0.0.1", "scheduler_port": refused_port()},
        cron={"colors": ["fhv"]},
        pipeline={"sinks": ["duckdb"]},
    )
    run = tlc_status(env, "--json")
    assert run.returncode == 0, run.stderr
    cells = json.loads(run.stdout)
    today = dt.date.today()
    assert {(c["color"], c["sink"]) for c in cells} == {("fhv", "duckdb")}
    assert [(c["year"], c["month"]) for c in cells] == [
        (today.year, m) for m in range(1, today.month + 1)
    ]


def test_a_sink_that_cannot_be_read_shows_question_marks_and_exits_1(
    env: PipelineEnv, refused_port: RefusedPorts
):
    env.configure(
        core={"scheduler_host": "127.0.0.1", "scheduler_port": refused_port()},
        pipeline={"sinks": ["duckdb", "postgres"]},
        postgres={"host": "127.0.0.1", "port": refused_port(), "connect_timeout": 2},
    )
    # libpq's PG* variables win over [postgres]: without them, nobody listens on that port
    no_pg = {k: v for k, v in env.env().items() if not k.startswith("PG")}
    run = subprocess.run(
        [str(BIN / "tlc-status"), "--colors", "green", "--start", "2021-01", "--end", "2021-02"],
        env=no_pg, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[4] == "green 2021 .?  .?"
    assert lines[-1].startswith("postgres: its load ledger could not be read (")
    assert "connection refused" in lines[-1].lower()
