"""The Luigi graph end to end on the local TLC server: months into DuckDB, reruns, bad files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipeline.cli import forget
from pipeline.domain.errors import BadSourceFile, MonthNotPublished
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.orchestration.tasks import CleanParquet, DownloadMonth, LoadDuckDB, LoadZones
from tests.support.data import BAD_FILES, expected_from_pandas
from tests.support.fixtures import PipelineEnv
from tests.support.tlc_server import Fault


def rows_in_duckdb(env: PipelineEnv, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def mtimes(env: PipelineEnv) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in env.lake_files()}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("green_tripdata_2021-01.parquet", "parquet"),
        ("green_tripdata_2023-02.parquet", "parquet"),
        ("green_tripdata_2020-10.csv.gz", "csv.gz"),
    ],
)
def test_real_green_month_into_duckdb_with_exact_counts(name, fmt, env: PipelineEnv, tlc: Path):
    year, month = int(name[15:19]), int(name[20:22])
    env.server.publish_month("green", year, month, tlc / "months" / name, fmt)
    env.configure(source={"format": fmt})
    assert env.build(LoadDuckDB(color="green", year=year, month=month))

    want = expected_from_pandas(tlc / "months" / name, year, month)
    (count,) = rows_in_duckdb(env, "SELECT count(*) FROM green_trips")[0]
    assert count == want["rows_out"]
    marker = rows_in_duckdb(
        env, "SELECT rows_out, source_sha256 FROM _pipeline_loads WHERE color='green'"
    )
    assert marker[0][0] == want["rows_out"]
    assert marker[0][1] == lake.sha256_file(tlc / "months" / name)
    # the zone lookup came along and joins
    (zones,) = rows_in_duckdb(env, "SELECT count(*) FROM taxi_zones")[0]
    assert zones == 265
    (joined,) = rows_in_duckdb(
        env,
        "SELECT count(*) FROM green_trips t JOIN taxi_zones z ON t.pu_location_id = z.location_id",
    )[0]
    assert joined == count
    # the lake holds exactly the final names
    names = sorted(p.relative_to(env.lake).as_posix() for p in env.lake_files())
    raw = f"raw/green/green_tripdata_{year:04d}-{month:02d}.{fmt}"
    clean = f"clean/green/year={year:04d}/month={month:02d}"
    assert names == sorted(
        [
            raw,
            raw + ".manifest.json",
            f"{clean}/_quality.json",
            f"{clean}/part-0.parquet",
            "raw/zones/taxi_zone_lookup.csv",
            "raw/zones/taxi_zone_lookup.csv.manifest.json",
        ]
    )


def test_second_run_changes_nothing(env: PipelineEnv, tlc: Path):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    task = LoadDuckDB(color="green", year=2021, month=1)
    assert env.build(task)
    before_files = mtimes(env)
    before_db = env.duckdb.stat().st_mtime_ns
    before_requests = list(env.server.requests)
    (loaded_at,) = rows_in_duckdb(env, "SELECT loaded_at FROM _pipeline_loads WHERE month=1")[0]

    assert env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert env.server.requests == before_requests, "a rerun must not download"
    assert mtimes(env) == before_files, "a rerun must not rewrite lake files"
    assert env.duckdb.stat().st_mtime_ns == before_db, "a rerun must not write to DuckDB"
    assert rows_in_duckdb(env, "SELECT loaded_at FROM _pipeline_loads WHERE month=1")[0] == (
        loaded_at,
    )


def test_forced_rerun_of_one_month_reloads_it_exactly_once(env: PipelineEnv, tlc: Path):
    for name, m in (("green_tripdata_2021-01.parquet", 1),):
        env.server.publish_month("green", 2021, m, tlc / "months" / name, "parquet")
    assert env.build(LoadDuckDB(color="green", year=2021, month=1))
    (count,) = rows_in_duckdb(env, "SELECT count(*) FROM green_trips")[0]
    downloads = env.server.count("green_tripdata_2021-01")

    removed = forget.forget(MonthKey("green", 2021, 1), "clean")
    assert any("load ledger row" in r for r in removed)
    assert not LoadDuckDB(color="green", year=2021, month=1).complete()
    assert DownloadMonth(color="green", year=2021, month=1).complete()  # raw kept

    assert env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert env.server.count("green_tripdata_2021-01") == downloads  # re-cleaned from raw
    assert rows_in_duckdb(env, "SELECT count(*) FROM green_trips")[0] == (count,)


def test_month_replace_leaves_other_months_alone(env: PipelineEnv, tlc: Path):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    env.server.publish_month(
        "green", 2023, 2, tlc / "months" / "green_tripdata_2023-02.parquet", "parquet"
    )
    assert env.build(
        LoadDuckDB(color="green", year=2021, month=1), LoadDuckDB(color="green", year=2023, month=2)
    )
    per_month = "SELECT year(pickup_datetime), count(*) FROM green_trips GROUP BY 1 ORDER BY 1"
    before = rows_in_duckdb(env, per_month)
    forget.forget(MonthKey("green", 2021, 1), "load")
    assert env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert rows_in_duckdb(env, per_month) == before


def test_transient_fault_in_the_chain_is_retried(env: PipelineEnv, tlc: Path):
    url = env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    path = url.removeprefix(env.server.url)
    env.server.fail(path, Fault("status", 500), Fault("status", 500))
    assert env.build(CleanParquet(color="green", year=2021, month=1))
    assert env.server.count(path) == 3
    q = lake.read_json(env.lake / "clean/green/year=2021/month=01" / lake.QUALITY_FILE)
    assert q["source_manifest"]["attempts"] == 3


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_served_as_a_month_fails_cleanly(name, env: PipelineEnv, tlc: Path):
    fmt, cause = BAD_FILES[name]
    env.configure(source={"format": fmt})
    env.server.publish_month("yellow", 2021, 1, tlc / "bad" / name, fmt)
    assert not env.build(LoadDuckDB(color="yellow", year=2021, month=1))

    failures = [(t.task_family, e) for t, e in env.failures]
    assert len(failures) == 1, failures
    family, error = failures[0]
    assert family == "DownloadMonth"
    assert isinstance(error, BadSourceFile)
    assert cause in str(error)
    assert "yellow_tripdata_2021-01" in str(error)
    trip_files = [p for p in env.lake_files() if "zones" not in p.parts]
    assert trip_files == [], "nothing under a final name, no temp files left"
    if env.duckdb.exists():
        tables = {r[0] for r in rows_in_duckdb(env, "SELECT table_name FROM duckdb_tables()")}
        if "yellow_trips" in tables:
            assert rows_in_duckdb(env, "SELECT count(*) FROM yellow_trips") == [(0,)]


def test_unpublished_month_is_missing_data_not_a_failure(env: PipelineEnv):
    result = env.build_detailed(DownloadMonth(color="yellow", year=2031, month=1))
    assert result.status == LuigiStatusCode.MISSING_EXT
    assert "MonthPublished(color=yellow, year=2031, month=1)" in result.summary_text
    assert env.failures == []
    assert env.lake_files() == []
    assert env.server.heads == ["/trip-data/yellow_tripdata_2031-01.parquet"]
    assert env.server.requests == []  # no download was tried


def test_month_withdrawn_between_check_and_download_raises_its_own_error(
    env: PipelineEnv, tlc: Path
):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    env.server.fail("/trip-data/green_tripdata_2021-01.parquet", Fault("status", 404))
    assert not env.build(DownloadMonth(color="green", year=2021, month=1))
    assert len(env.failures) == 1
    assert isinstance(env.failures[0][1], MonthNotPublished)
    assert env.lake_files() == []


def test_zones_reload_when_the_lookup_changes(env: PipelineEnv, tlc: Path, tmp_path: Path):
    assert env.build(LoadZones())
    assert rows_in_duckdb(env, "SELECT count(*) FROM taxi_zones") == [(265,)]
    row = rows_in_duckdb(env, "SELECT * FROM taxi_zones WHERE location_id = 1")
    assert row == [(1, "EWR", "Newark Airport", "EWR")]
    assert LoadZones().complete()


def test_clean_output_is_canonical_zstd(env: PipelineEnv, tlc: Path):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    assert env.build(CleanParquet(color="green", year=2021, month=1))
    meta = pq.read_metadata(env.lake / "clean/green/year=2021/month=01/part-0.parquet")
    assert meta.row_group(0).column(0).compression == "ZSTD"
