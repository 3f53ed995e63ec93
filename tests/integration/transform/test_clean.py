"""CleanParquet's function on the real whole months in ../shared/data/tlc/months.

Expected counts are computed independently of the pipeline, with pandas
(tests/support/data.py). The era files are in tests/integration/extract/test_sources.py, the
small hand-written bad files in tests/unit/transform/test_clean.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.domain import catalog
from pipeline.domain.errors import BadSourceFile
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.transform.clean import clean_month
from tests.support.data import expected_from_pandas, kind_of, parse_name

MONTHS = [
    "green_tripdata_2021-01.parquet",
    "green_tripdata_2023-02.parquet",
    "green_tripdata_2020-10.csv.gz",
]


@pytest.mark.parametrize("name", MONTHS)
def test_real_month_counts_match_an_independent_count(name: str, tlc: Path, tmp_path: Path):
    color, year, month = parse_name(name)
    src = tlc / "months" / name
    q = clean_month(src, kind_of(name), MonthKey(color, year, month), tmp_path / "c")
    want = expected_from_pandas(src, year, month)
    assert q["rows_in"] == want["rows_in"]
    assert q["rows_out"] == want["rows_out"]
    assert q["rows_dropped"]["passenger_count_zero"] == want["passenger_count_zero"]
    assert q["rows_dropped"]["pickup_outside_month"] == want["pickup_outside_month"]
    t = pq.read_table(tmp_path / "c" / lake.CLEAN_FILE)
    assert t.num_rows == want["rows_out"]
    assert t.schema == catalog.arrow_schema(color)
    # null counts in the sidecar are the file's own
    assert q["nulls"] == {c: t[c].null_count for c in t.column_names}
    assert json.loads((tmp_path / "c" / lake.QUALITY_FILE).read_text()) == q


def test_2023_type_change_gives_identical_schemas(tlc: Path, tmp_path: Path):
    before = pq.read_schema(tlc / "months" / "green_tripdata_2021-01.parquet")
    after = pq.read_schema(tlc / "months" / "green_tripdata_2023-02.parquet")
    assert before.field("VendorID").type != after.field("VendorID").type  # the real drift
    clean_month(
        tlc / "months" / "green_tripdata_2021-01.parquet",
        "parquet",
        MonthKey("green", 2021, 1),
        tmp_path / "a",
    )
    clean_month(
        tlc / "months" / "green_tripdata_2023-02.parquet",
        "parquet",
        MonthKey("green", 2023, 2),
        tmp_path / "b",
    )
    assert pq.read_schema(tmp_path / "a" / lake.CLEAN_FILE) == pq.read_schema(
        tmp_path / "b" / lake.CLEAN_FILE
    )


# -- bad input: one clear error, nothing published ----------------------------------------
def test_wrong_month_file_is_rejected(tlc: Path, tmp_path: Path):
    with pytest.raises(BadSourceFile, match="not that month's file"):
        clean_month(
            tlc / "months" / "green_tripdata_2021-01.parquet",
            "parquet",
            MonthKey("green", 2021, 2),
            tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


def test_rerun_replaces_published_month_whole(tlc: Path, tmp_path: Path):
    out = tmp_path / "out"
    src = tlc / "eras" / "yellow_tripdata_2015-01.head100.csv"
    clean_month(src, "csv", MonthKey("yellow", 2015, 1), out)
    (out / "stray.txt").write_text("old")
    clean_month(src, "csv", MonthKey("yellow", 2015, 1), out)
    assert sorted(p.name for p in out.iterdir()) == [lake.QUALITY_FILE, lake.CLEAN_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
