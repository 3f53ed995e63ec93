"""CleanParquet's function on every real TLC file we have.

Expected counts are computed here independently of the pipeline: with the stdlib csv
module for the CSV heads and with pandas for the whole months.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.domain import catalog, eras
from pipeline.domain.errors import BadSourceFile, CastError, SchemaError
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.transform.clean import clean_month
from tests.support.data import expected_from_pandas, kind_of, parse_name
from tests.support.fixtures import TLC

ERA_FILES = sorted(p.name for p in (TLC / "eras").glob("*")) if TLC.is_dir() else []


def expected_from_csv(path: Path, year: int, month: int) -> dict[str, int]:
    """Count by hand what the rules should do: stdlib csv, no pyarrow, no catalog."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    rows = list(csv.reader(text.splitlines()))
    header = [h.strip().lower() for h in rows[0]]
    data = [r for r in rows[1:] if r]
    cut = 0
    if not text.endswith("\n") and len(data[-1]) < len(header):
        data, cut = data[:-1], 1
    pick = next(i for i, h in enumerate(header) if "pickup" in h and "date" in h)
    pax = header.index("passenger_count") if "passenger_count" in header else None
    start, end = dt.datetime(year, month, 1), dt.datetime(year + month // 12, month % 12 + 1, 1)
    zero = outside = 0
    for r in data:
        if pax is not None and r[pax].strip() and float(r[pax]) == 0:
            zero += 1
        elif not start <= dt.datetime.fromisoformat(r[pick].strip()) < end:
            outside += 1
    return {
        "rows_in": len(data) + cut,
        "rows_out": len(data) - zero - outside,
        "passenger_count_zero": zero,
        "pickup_outside_month": outside,
        "truncated_last_row": cut,
    }


@pytest.mark.parametrize("name", ERA_FILES)
def test_every_era_file_normalises_to_its_colour_schema(name: str, tlc: Path, tmp_path: Path):
    color, year, month = parse_name(name)
    src = tlc / "eras" / name
    out = tmp_path / "clean"
    quality = clean_month(src, kind_of(name), MonthKey(color, year, month), out)

    table = pq.read_table(out / lake.CLEAN_FILE)
    assert table.schema == catalog.arrow_schema(color)
    assert table.num_rows == quality["rows_out"]
    if name.endswith(".csv"):
        want = expected_from_csv(src, year, month)
        assert quality["rows_in"] == want["rows_in"]
        assert quality["rows_out"] == want["rows_out"]
        for rule in ("passenger_count_zero", "pickup_outside_month", "truncated_last_row"):
            assert quality["rows_dropped"][rule] == want[rule], rule
    # every source column landed somewhere, and the pickup time is never null
    assert table["pickup_datetime"].null_count == 0
    mapped = {s for sources in quality["column_map"].values() for s in sources}
    header = (
        pq.read_schema(src).names
        if name.endswith(".parquet")
        else next(csv.reader([src.read_text().splitlines()[0]]))
    )
    assert {h for h in header if h.strip()} == mapped


def test_head1kb_files_count_their_cut_off_last_line(tlc: Path, tmp_path: Path):
    heads = sorted((tlc / "eras").glob("*.head1KB.csv"))
    assert heads, "the real 1 KB heads are missing"
    for src in heads:
        color, year, month = parse_name(src.name)
        q = clean_month(src, "csv", MonthKey(color, year, month), tmp_path / src.name)
        assert q["rows_dropped"]["truncated_last_row"] == 1, src.name


@pytest.mark.parametrize("name", ERA_FILES)
def test_every_era_header_is_a_catalogued_era(name: str, tlc: Path):
    color, year, month = parse_name(name)
    src = tlc / "eras" / name
    if name.endswith(".parquet"):
        header = pq.read_schema(src).names
    else:
        header = next(csv.reader([src.read_text(encoding="utf-8-sig").splitlines()[0]]))
    norm = [catalog.normalise_name(h) for h in header]
    found = [
        e
        for e in eras.ERAS
        if e.color == color and [catalog.normalise_name(h) for h in e.header] == norm
    ]
    assert found, f"{name}: header {header} is in no catalogued {color} era"
    ym = f"{year:04d}-{month:02d}"
    assert any(e.first <= ym <= (e.last or "9999-99") for e in found), (name, found)


def test_old_eras_map_words_and_coordinates(tlc: Path, tmp_path: Path):
    clean_month(
        tlc / "eras" / "yellow_tripdata_2009-01.head100.csv",
        "csv",
        MonthKey("yellow", 2009, 1),
        tmp_path / "y",
    )
    t = pq.read_table(tmp_path / "y" / lake.CLEAN_FILE).to_pandas()
    assert set(t["vendor_id"].dropna()) <= {1, 2, 3}  # VTS/CMT/DDS
    assert set(t["payment_type"].dropna()) <= {1, 2, 3, 4, 5}  # CASH/Credit/...
    assert t["pickup_longitude"].notna().all()
    assert t["pu_location_id"].isna().all()
    first = t.iloc[0]
    assert (first.vendor_id, first.payment_type, first.total_amount) == (2, 2, 9.4)  # VTS, CASH


def test_fhv_2018_coalesces_both_base_number_columns(tlc: Path, tmp_path: Path):
    q = clean_month(
        tlc / "eras" / "fhv_tripdata_2018-03.head1KB.csv",
        "csv",
        MonthKey("fhv", 2018, 3),
        tmp_path / "f",
    )
    assert q["column_map"]["dispatching_base_num"] == [
        "Dispatching_base_num",
        "Dispatching_base_number",
    ]
    t = pq.read_table(tmp_path / "f" / lake.CLEAN_FILE)
    assert t["dispatching_base_num"].null_count == 0
    assert set(t["sr_flag"].drop_null().to_pylist()) <= {"Y", "N"}


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
        clean_month(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_type_fails_naming_column_and_value(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW + "\n" + ROW.replace(",1,1.50,", ",two,1.50,") + "\n")
    with pytest.raises(CastError, match=r"'passenger_count'.*'two'.*int32"):
        clean_month(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert list(tmp_path.glob("*out*")) == []


def test_fractional_integer_is_not_truncated(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW.replace(",1,1.50,", ",1.5,1.50,") + "\n")
    with pytest.raises(CastError, match="passenger_count"):
        clean_month(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")


def test_malformed_row_in_the_middle_fails_with_its_line(tmp_path: Path):
    src = _csv(tmp_path, HEADER + "\n" + ROW + "\n1,2019-01-01 00:00:00,oops\n" + ROW + "\n")
    with pytest.raises(BadSourceFile, match=r"malformed CSV row.*line 3"):
        clean_month(src, "csv", MonthKey("yellow", 2019, 1), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_month_file_is_rejected(tlc: Path, tmp_path: Path):
    with pytest.raises(BadSourceFile, match="not that month's file"):
        clean_month(
            tlc / "months" / "green_tripdata_2021-01.parquet",
            "parquet",
            MonthKey("green", 2021, 2),
            tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


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
    q = clean_month(src, "parquet", MonthKey("yellow", 2021, 1), tmp_path / "out")
    t = pq.read_table(tmp_path / "out" / lake.CLEAN_FILE)
    assert t["passenger_count"].to_pylist() == [None, 2]
    assert t["fare_amount"].to_pylist() == [None, 3.5]
    assert q["nulls"]["fare_amount"] == 1


def test_rerun_replaces_published_month_whole(tlc: Path, tmp_path: Path):
    out = tmp_path / "out"
    src = tlc / "eras" / "yellow_tripdata_2015-01.head100.csv"
    clean_month(src, "csv", MonthKey("yellow", 2015, 1), out)
    (out / "stray.txt").write_text("old")
    clean_month(src, "csv", MonthKey("yellow", 2015, 1), out)
    assert sorted(p.name for p in out.iterdir()) == [lake.QUALITY_FILE, lake.CLEAN_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
