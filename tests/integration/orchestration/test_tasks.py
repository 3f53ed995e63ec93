"""The Luigi graph end to end on the local TLC server: months into DuckDB, reruns, bad files.

Every test runs twice (the ``lake_env`` fixture): with the lake in a folder and with it on GCS
(fake-gcs-server), and must pass the same way on both."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipeline.cli import forget
from pipeline.domain.errors import BadSourceFile, LakeDataMissing, MonthNotPublished
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.lake.lake import Lake
from pipeline.orchestration.tasks import CleanParquet, DownloadMonth, LoadDuckDB, LoadZones
from tests.support.data import BAD_FILES, expected_from_pandas
from tests.support.fixtures import PipelineEnv
from tests.support.tlc_server import Fault


def rows_in_duckdb(lake_env: PipelineEnv, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(lake_env.duckdb), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def state(lake_env: PipelineEnv) -> dict[str, tuple[int, object]]:
    """Each lake object's size and time of writing."""
    return {name: (i.size, i.updated) for name, i in lake_env.lake_objects().items()}


TOKEN = r"[A-Za-z0-9_]+-[0-9]+-[0-9a-f]{8}"  # host-pid-random: the writer of a data object


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("green_tripdata_2021-01.parquet", "parquet"),
        ("green_tripdata_2023-02.parquet", "parquet"),
        ("green_tripdata_2020-10.csv.gz", "csv.gz"),
    ],
)
def test_real_green_month_into_duckdb_with_exact_counts(
    name, fmt, lake_env: PipelineEnv, tlc: Path
):
    year, month = int(name[15:19]), int(name[20:22])
    lake_env.server.publish_month("green", year, month, tlc / "months" / name, fmt)
    lake_env.configure(source={"format": fmt})
    assert lake_env.build(LoadDuckDB(color="green", year=year, month=month))

    want = expected_from_pandas(tlc / "months" / name, year, month)
    (count,) = rows_in_duckdb(lake_env, "SELECT count(*) FROM green_trips")[0]
    assert count == want["rows_out"]
    marker = rows_in_duckdb(
        lake_env, "SELECT rows_out, source_sha256 FROM _pipeline_loads WHERE color='green'"
    )
    assert marker[0][0] == want["rows_out"]
    assert marker[0][1] == lake.sha256_file(tlc / "months" / name)
    # the zone lookup came along and joins
    (zones,) = rows_in_duckdb(lake_env, "SELECT count(*) FROM taxi_zones")[0]
    assert zones == 265
    (joined,) = rows_in_duckdb(
        lake_env,
        "SELECT count(*) FROM green_trips t JOIN taxi_zones z ON t.pu_location_id = z.location_id",
    )[0]
    assert joined == count
    # the lake holds exactly the published files: each marker and the data it names
    names = sorted(lake_env.lake_objects())
    raw = f"raw/green/green_tripdata_{year:04d}-{month:02d}"
    clean = f"clean/green/year={year:04d}/month={month:02d}"
    patterns = sorted(
        [
            rf"{raw}\.{TOKEN}\.{re.escape(fmt)}",
            rf"{raw}\.{re.escape(fmt)}\.manifest\.json",
            rf"{clean}/_quality\.json",
            rf"{clean}/part-0\.{TOKEN}\.parquet",
            rf"raw/zones/taxi_zone_lookup\.{TOKEN}\.csv",
            r"raw/zones/taxi_zone_lookup\.csv\.manifest\.json",
        ]
    )
    assert len(names) == len(patterns), names
    for pattern in patterns:
        assert sum(bool(re.fullmatch(pattern, n)) for n in names) == 1, (pattern, names)
    the_lake: Lake = lake_env.the_lake()
    key = MonthKey("green", year, month)
    report = the_lake.read_quality(key)
    assert the_lake.clean_files(key, report) == [n for n in names if "part-0" in n]
    raw_file = the_lake.raw(the_lake.raw_name(key, fmt))
    assert raw_file is not None
    assert raw_file.manifest["sha256"] == marker[0][1]


def test_second_run_changes_nothing(lake_env: PipelineEnv, tlc: Path):
    lake_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    task = LoadDuckDB(color="green", year=2021, month=1)
    assert lake_env.build(task)
    before_files = state(lake_env)
    before_db = lake_env.duckdb.stat().st_mtime_ns
    before_requests = list(lake_env.server.requests)
    (loaded_at,) = rows_in_duckdb(lake_env, "SELECT loaded_at FROM _pipeline_loads WHERE month=1")[
        0
    ]

    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert lake_env.server.requests == before_requests, "a rerun must not download"
    assert state(lake_env) == before_files, "a rerun must not rewrite lake files"
    assert lake_env.duckdb.stat().st_mtime_ns == before_db, "a rerun must not write to DuckDB"
    assert rows_in_duckdb(lake_env, "SELECT loaded_at FROM _pipeline_loads WHERE month=1")[0] == (
        loaded_at,
    )


def test_forced_rerun_of_one_month_reloads_it_exactly_once(lake_env: PipelineEnv, tlc: Path):
    for name, m in (("green_tripdata_2021-01.parquet", 1),):
        lake_env.server.publish_month("green", 2021, m, tlc / "months" / name, "parquet")
    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    (count,) = rows_in_duckdb(lake_env, "SELECT count(*) FROM green_trips")[0]
    downloads = lake_env.server.count("green_tripdata_2021-01")

    removed = forget.forget(MonthKey("green", 2021, 1), "clean")
    assert any("load ledger row" in r for r in removed)
    assert not LoadDuckDB(color="green", year=2021, month=1).complete()
    assert DownloadMonth(color="green", year=2021, month=1).complete()  # raw kept

    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert lake_env.server.count("green_tripdata_2021-01") == downloads  # re-cleaned from raw
    assert rows_in_duckdb(lake_env, "SELECT count(*) FROM green_trips")[0] == (count,)


def test_month_replace_leaves_other_months_alone(lake_env: PipelineEnv, tlc: Path):
    lake_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    lake_env.server.publish_month(
        "green", 2023, 2, tlc / "months" / "green_tripdata_2023-02.parquet", "parquet"
    )
    assert lake_env.build(
        LoadDuckDB(color="green", year=2021, month=1), LoadDuckDB(color="green", year=2023, month=2)
    )
    per_month = "SELECT year(pickup_datetime), count(*) FROM green_trips GROUP BY 1 ORDER BY 1"
    before = rows_in_duckdb(lake_env, per_month)
    forget.forget(MonthKey("green", 2021, 1), "load")
    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert rows_in_duckdb(lake_env, per_month) == before


def test_transient_fault_in_the_chain_is_retried(lake_env: PipelineEnv, tlc: Path):
    url = lake_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    path = url.removeprefix(lake_env.server.url)
    lake_env.server.fail(path, Fault("status", 500), Fault("status", 500))
    assert lake_env.build(CleanParquet(color="green", year=2021, month=1))
    assert lake_env.server.count(path) == 3
    q = lake_env.the_lake().read_quality(MonthKey("green", 2021, 1))
    assert q["source_manifest"] is not None
    assert q["source_manifest"]["attempts"] == 3


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_served_as_a_month_fails_cleanly(name, lake_env: PipelineEnv, tlc: Path):
    fmt, cause = BAD_FILES[name]
    lake_env.configure(source={"format": fmt})
    lake_env.server.publish_month("yellow", 2021, 1, tlc / "bad" / name, fmt)
    assert not lake_env.build(LoadDuckDB(color="yellow", year=2021, month=1))

    failures = [(t.task_family, e) for t, e in lake_env.failures]
    assert len(failures) == 1, failures
    family, error = failures[0]
    assert family == "DownloadMonth"
    assert isinstance(error, BadSourceFile)
    assert cause in str(error)
    assert "yellow_tripdata_2021-01" in str(error)
    trip_files = [n for n in lake_env.lake_objects() if "/zones/" not in n]
    assert trip_files == [], "nothing under a final name, no temporaries or pieces left"
    if lake_env.duckdb.exists():
        tables = {r[0] for r in rows_in_duckdb(lake_env, "SELECT table_name FROM duckdb_tables()")}
        if "yellow_trips" in tables:
            assert rows_in_duckdb(lake_env, "SELECT count(*) FROM yellow_trips") == [(0,)]


def test_unpublished_month_is_missing_data_not_a_failure(lake_env: PipelineEnv):
    result = lake_env.build_detailed(DownloadMonth(color="yellow", year=2031, month=1))
    assert result.status == LuigiStatusCode.MISSING_EXT
    assert "MonthPublished(color=yellow, year=2031, month=1)" in result.summary_text
    assert lake_env.failures == []
    assert lake_env.lake_objects() == {}
    assert lake_env.server.heads == ["/trip-data/yellow_tripdata_2031-01.parquet"]
    assert lake_env.server.requests == []  # no download was tried


def test_month_withdrawn_between_check_and_download_raises_its_own_error(
    lake_env: PipelineEnv, tlc: Path
):
    lake_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    lake_env.server.fail("/trip-data/green_tripdata_2021-01.parquet", Fault("status", 404))
    assert not lake_env.build(DownloadMonth(color="green", year=2021, month=1))
    assert len(lake_env.failures) == 1
    assert isinstance(lake_env.failures[0][1], MonthNotPublished)
    assert lake_env.lake_objects() == {}


def test_zones_reload_when_the_lookup_changes(lake_env: PipelineEnv, tlc: Path, tmp_path: Path):
    assert lake_env.build(LoadZones())
    assert rows_in_duckdb(lake_env, "SELECT count(*) FROM taxi_zones") == [(265,)]
    row = rows_in_duckdb(lake_env, "SELECT * FROM taxi_zones WHERE location_id = 1")
    assert row == [(1, "EWR", "Newark Airport", "EWR")]
    assert LoadZones().complete()


def test_clean_output_is_canonical_zstd(lake_env: PipelineEnv, tlc: Path):
    lake_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    assert lake_env.build(CleanParquet(color="green", year=2021, month=1))
    the_lake = lake_env.the_lake()
    key = MonthKey("green", 2021, 1)
    (part,) = the_lake.clean_files(key, the_lake.read_quality(key))
    with the_lake.store.filesystem.open_input_file(the_lake.store.path(part)) as f:
        meta = pq.read_metadata(f)
    assert meta.row_group(0).column(0).compression == "ZSTD"


# -- a marker whose data was removed outside the pipeline ----------------------------------
def test_raw_file_removed_by_hand_is_one_error_and_forget_converges(
    lake_env: PipelineEnv, tlc: Path
):
    """Our writers never leave a marker without its data, but a person or a bucket's
    lifecycle rule can remove the data. The clean then names both objects and the command
    that rebuilds the stage, instead of calling the TLC's file unreadable; it publishes
    nothing, and the command works."""
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    lake_env.server.publish_month("green", 2021, 1, src, "parquet")
    assert lake_env.build(DownloadMonth(color="green", year=2021, month=1))
    the_lake = lake_env.the_lake()
    key = MonthKey("green", 2021, 1)
    raw_name = the_lake.raw_name(key, "parquet")
    raw = the_lake.raw(raw_name)
    assert raw is not None
    the_lake.store.delete([raw.name])

    assert not lake_env.build(CleanParquet(color="green", year=2021, month=1))
    ((task, error),) = lake_env.failures
    assert task.task_family == "CleanParquet"
    assert isinstance(error, LakeDataMissing)
    message = str(error)
    assert "\n" not in message
    assert the_lake.uri(the_lake.manifest_name(raw_name)) in message
    assert the_lake.uri(raw.name) in message
    assert "tlc-forget --color green --year 2021 --month 1 --from raw" in message
    assert the_lake.quality(key) is None
    assert not [n for n in lake_env.lake_objects() if n.startswith("clean/")]

    forget.forget(key, "raw")
    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    want = expected_from_pandas(src, 2021, 1)
    assert rows_in_duckdb(lake_env, "SELECT count(*) FROM green_trips") == [(want["rows_out"],)]


def test_clean_part_removed_by_hand_is_one_error_and_forget_converges(
    lake_env: PipelineEnv, tlc: Path
):
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    lake_env.server.publish_month("green", 2021, 1, src, "parquet")
    assert lake_env.build(CleanParquet(color="green", year=2021, month=1))
    the_lake = lake_env.the_lake()
    key = MonthKey("green", 2021, 1)
    (part,) = the_lake.clean_files(key, the_lake.read_quality(key))
    the_lake.store.delete([part])

    assert not lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    ((task, error),) = lake_env.failures
    assert task.task_family == "LoadDuckDB"
    assert isinstance(error, LakeDataMissing)
    message = str(error)
    assert the_lake.uri(the_lake.quality_name(key)) in message
    assert the_lake.uri(part) in message
    assert "tlc-forget --color green --year 2021 --month 1 --from clean" in message
    ledger = "SELECT count(*) FROM _pipeline_loads WHERE color = 'green'"
    assert rows_in_duckdb(lake_env, ledger) == [(0,)]

    forget.forget(key, "clean")
    downloads = lake_env.server.count("green_tripdata_2021-01")
    assert lake_env.build(LoadDuckDB(color="green", year=2021, month=1))
    assert lake_env.server.count("green_tripdata_2021-01") == downloads  # cleaned from raw
    want = expected_from_pandas(src, 2021, 1)
    assert rows_in_duckdb(lake_env, "SELECT count(*) FROM green_trips") == [(want["rows_out"],)]
