"""clean_month on small files written by the test: bad input gives one clear error naming the
column, value or line, and publishes nothing; NaN becomes null."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.domain.errors import BadSourceFile, CastError, SchemaError
from pipeline.domain.months import MonthKey
from tests.support.lakes import clean_file, clean_table, files_under


# -- bad input: one clear error, nothing published ----------------------------------------
def _csv(tmp_path: Path, text: str, name: str = "yellow_tripdata_2019-01.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


HEADER = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
    "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,"
    "extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,"
    "congestion_surcharge"
)


ROW = "1,2019-01-01 00:46:40,2019-01-01 00:53:20,1,1.50,1,N,151,239,1,7,0.5,0.5,1.65,0,0.3,9.95,"


def test_unknown_column_fails_naming_it(tmp_path: Path):
    src = _csv(tmp_path, HEADER + ",robot_fee\n" + ROW + ",1\n")
    with pytest.raises(
        SchemaError, match=r"yellow_tripdata_2019-01.csv: unknown columns.*robot_fee"
    ):
        clean_file(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_wrong_type_fails_naming_column_and_value(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW + "\n" + ROW.replace(",1,1.50,", ",two,1.50,") + "\n")
    with pytest.raises(CastError, match=r"'passenger_count'.*'two'.*int32"):
        clean_file(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_fractional_integer_is_not_truncated(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW.replace(",1,1.50,", ",1.5,1.50,") + "\n")
    with pytest.raises(CastError, match="passenger_count"):
        clean_file(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")


def test_malformed_row_in_the_middle_fails_with_its_line(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW + "\n1,2019-01-01 00:00:00,oops\n" + ROW + "\n")
    with pytest.raises(BadSourceFile, match=r"malformed CSV row.*line 3"):
        clean_file(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_nan_becomes_null(tmp_path: Path):
    src = tmp_path / "yellow_tripdata_2021-01.parquet"
    pq.write_table(
        pa.table(
            {
                "tpep_pickup_datetime": pa.array([dt.datetime(2021, 1, 5)] * 2, pa.timestamp("us")),
                "passenger_count": [float("nan"), 2.0],
                "fare_amount": [float("nan"), 3.5],
            }
        ),
        src,
    )
    q = clean_file(src, "parquet", MonthKey("yellow", 2021, 1), tmp_path / "out")
    t = clean_table(tmp_path / "out", MonthKey("yellow", 2021, 1))
    assert t["passenger_count"].to_pylist() == [None, 2]
    assert t["fare_amount"].to_pylist() == [None, 3.5]
    assert q["nulls"]["fare_amount"] == 1
