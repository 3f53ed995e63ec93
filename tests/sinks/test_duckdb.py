"""The DuckDB sink: atomic month replace, rollback, the one-writer lock, identifiers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.sinks.duckdb import DuckDBWarehouse, quote_ident, table_ddl, trips_table
from pipeline.transform.clean import clean_month, load_month, read_quality


@pytest.fixture
def month(tlc: Path, tmp_path: Path) -> Path:
    out = tmp_path / "clean"
    clean_month(tlc / "months" / "green_tripdata_2021-01.parquet", "parquet", "green", 2021, 1, out)
    return out


def count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM green_trips").fetchone()[0]


def test_load_records_marker_in_the_same_transaction(month: Path, tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    assert load_month(month, wh) == 76368
    marker = wh.loaded("green", 2021, 1)
    assert marker["rows"] == 76368
    assert marker["clean_sha256"] == read_quality(month)["files"][0]["sha256"]
    assert wh.loaded("green", 2021, 2) is None


def test_failed_load_rolls_back_to_the_old_month(month: Path, tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    load_month(month, wh)
    marker = wh.loaded("green", 2021, 1)
    quality = read_quality(month)
    quality["rows_out"] += 1  # the clean month no longer matches what arrives
    with pytest.raises(PipelineError, match="rolled back"):
        wh.replace_month("green", 2021, 1, [month / "part-0.parquet"], quality)
    assert count(tmp_path / "w.duckdb") == 76368
    assert wh.loaded("green", 2021, 1) == marker


def test_waits_for_another_process_holding_the_file(month: Path, tmp_path: Path):
    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True);"
            " time.sleep(1.5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    assert load_month(month, DuckDBWarehouse(db, lock_timeout=30)) == 76368
    assert time.monotonic() - start > 0.5
    holder.wait()


def test_lock_held_too_long_is_one_clear_error(month: Path, tmp_path: Path):
    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True);"
            " time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineError, match=r"still locked by another process after 1 s"):
            load_month(month, DuckDBWarehouse(db, lock_timeout=1))
    finally:
        holder.kill()
        holder.wait()


def test_identifiers_are_quoted_and_colours_checked():
    assert quote_ident('a"; DROP TABLE x; --') == '"a""; DROP TABLE x; --"'
    with pytest.raises(ValueError, match="unknown colour"):
        trips_table('green"; DROP TABLE green_trips; --')
    con = duckdb.connect()
    con.execute(table_ddl('we"ird', catalog.arrow_schema("fhv")))
    assert con.execute('SELECT count(*) FROM "we""ird"').fetchone() == (0,)
