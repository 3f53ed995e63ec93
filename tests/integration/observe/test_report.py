"""tlc-report over real lakes and ledgers: synthetic months and the real green 2021-01, cleaned
by the real clean stage, loaded into DuckDB and PostgreSQL, with one of each anomaly planted;
the same reading of a lake on GCS (the emulator); and Backfill --report through Luigi."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.cli import report as cli
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local, open_lake
from pipeline.observe import report
from pipeline.observe.report import LEDGER, NULLS, ROWS, SINKS
from pipeline.orchestration import config
from pipeline.orchestration.loading import load_month
from pipeline.orchestration.tasks import Backfill, Report
from tests.support.fixtures import PipelineEnv
from tests.support.gcp_emulators import PROJECT
from tests.support.report_lake import clean_into, clean_synthetic, reclean, synthetic_file

# yellow 2019-07 .. 2020-06, in rows: steady, then the 2020 drop (a thousandth of the real one)
YELLOW = dict(zip(
    [(2019, m) for m in range(7, 13)] + [(2020, m) for m in range(1, 7)],
    [6000, 5800, 6100, 6300, 6000, 6200, 5700, 5600, 2500, 250, 350, 550], strict=True,
))  # fmt: skip
GREEN_REAL = MonthKey("green", 2021, 1)


def build_lake(tmp: Path, tlc: Path) -> Path:
    """The lake: YELLOW, with 2019-11's tip_amount half empty, and the real green 2021-01."""
    root, raw = tmp / "lake", tmp / "raw"
    lake = local(root)
    for ym, rows in YELLOW.items():
        key = MonthKey("yellow", *ym)
        if ym == (2019, 11):
            clean_synthetic(lake, raw, key, rows, null_column="tip_amount", null_share=0.5)
        else:
            clean_synthetic(lake, raw, key, rows)
    clean_into(lake, tlc / "months" / "green_tripdata_2021-01.parquet", GREEN_REAL)
    return root


def test_tlc_report_flags_each_kind_of_anomaly_in_duckdb_and_postgres(
    pg_env: PipelineEnv, tlc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    root = build_lake(tmp_path, tlc)
    pg_env.configure(lake={"root": str(root)}, pipeline={"sinks": ["duckdb", "postgres"]})
    lake = config.lake().get()
    duck, pg = config.sink("duckdb"), config.sink("postgres")
    for key in [MonthKey("yellow", *ym) for ym in YELLOW] + [GREEN_REAL]:
        load_month(lake, key, duck, "duckdb")
        if key != MonthKey("yellow", 2020, 1):  # never loaded into Postgres
            load_month(lake, key, pg, "postgres")
    reclean(lake, tmp_path / "raw2", MonthKey("yellow", 2019, 12), 6200, seed=7)  # after loads

    out = tmp_path / "out" / "report.html"
    assert cli.main(["--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"wrote {out}: 13 clean months, 8 anomalies\n")

    written = report.write_report(lake, {"duckdb": duck, "postgres": pg}, out)
    assert [(a.key.label, a.rule) for a in written.anomalies] == [
        ("yellow 2019-11", NULLS),
        ("yellow 2019-12", LEDGER),  # re-cleaned after both loads
        ("yellow 2019-12", LEDGER),
        ("yellow 2020-01", SINKS),
        ("yellow 2020-03", ROWS),
        ("yellow 2020-04", ROWS),
        ("yellow 2020-05", ROWS),
        ("yellow 2020-06", ROWS),
    ]
    details = {a.detail.split(" ")[0] for a in written.anomalies if a.rule == LEDGER}
    assert details == {"duckdb", "postgres"}
    assert [a.detail for a in written.anomalies if a.rule == SINKS] == [
        "loaded in duckdb; missing in postgres"
    ]
    assert next(a for a in written.anomalies if a.rule == NULLS).column == "tip_amount"
    page = out.read_text()
    assert "green 2021-01" not in page  # a loaded month with history: not flagged
    assert report.state_of(out) is not None
    # the real month's counts, as its _quality.json says them, are what the page carries
    green = next(q for q in report.read_quality(lake, report.quality_objects(lake))
                 if q.key == GREEN_REAL)  # fmt: skip
    assert (green.rows_in, green.rows_out < green.rows_in) == (76_518, True)

    assert cli.main(["--out", str(out), "--fail-on-anomaly"]) == cli.EXIT_ANOMALIES
    assert cli.main(["--out", str(out), "--sinks", "duckdb,oracle"]) == cli.EXIT_USAGE
    assert "tlc-report: error: --sinks: unknown ['oracle']" in capsys.readouterr().err


def test_an_unreadable_lake_is_one_error_line(env: PipelineEnv, capsys):
    env.configure(lake={"root": str(env.root / "empty-lake")})
    assert cli.main(["--out", str(env.root / "r.html"), "--sinks", ""]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no clean months in the lake, nothing to report" in err


def test_a_lake_on_gcs_reads_as_the_same_months(gcs_bucket: str, tmp_path: Path):
    folder, bucket = local(tmp_path / "lake"), open_lake(f"gs://{gcs_bucket}/lake", PROJECT)
    for ym in [(2020, 2), (2020, 3)]:
        key = MonthKey("yellow", *ym)
        raw = synthetic_file(tmp_path / "raw", key, YELLOW[ym])
        clean_into(folder, raw, key)
        clean_into(bucket, raw, key)
    on_disk = report.read_quality(folder, report.quality_objects(folder))
    on_gcs = report.read_quality(bucket, report.quality_objects(bucket))
    assert [q.where for q in on_gcs] == [
        f"gs://{gcs_bucket}/lake/clean/yellow/year=2020/month=0{m}/_quality.json" for m in (2, 3)
    ]
    strip = [(q.key, q.rows_in, q.rows_out, dict(q.rows_dropped), dict(q.nulls)) for q in on_disk]
    assert strip == [
        (q.key, q.rows_in, q.rows_out, dict(q.rows_dropped), dict(q.nulls)) for q in on_gcs
    ]


def test_backfill_report_draws_after_the_months_and_again_only_when_they_change(env: PipelineEnv):
    for ym in [(2020, 1), (2020, 2), (2020, 3)]:
        path = synthetic_file(env.root / "raw", MonthKey("yellow", *ym), YELLOW[ym])
        env.server.publish_month("yellow", *ym, path, "parquet")
    out = env.root / "report.html"
    first, last = dt.date(2020, 1, 1), dt.date(2020, 3, 1)

    assert env.build(Backfill(colors="yellow", start=first, end=last))
    assert not out.exists()  # the default is unchanged: no report

    task = Backfill(colors="yellow", start=first, end=last, report=True, report_path=str(out))
    assert env.build(task)
    drawn = report.state_of(out)
    assert drawn is not None
    assert "3 clean months" in out.read_text()
    assert Report(path=str(out)).complete()

    mtime = out.stat().st_mtime_ns
    assert env.build(task)  # nothing changed: nothing drawn
    assert out.stat().st_mtime_ns == mtime

    config.sink("duckdb").forget(MonthKey("yellow", 2020, 2))  # the ledger changes ...
    assert not Report(path=str(out)).complete()
    assert env.build(task)  # ... so the backfill loads it again and the report is redrawn
    assert report.state_of(out) not in (None, drawn)
