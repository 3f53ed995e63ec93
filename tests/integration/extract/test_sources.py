"""Every real era file in ../shared/data/tlc/eras read and cleaned: its header is a catalogued
era, every column lands in the colour's schema, and the counts match a count made by hand with
the stdlib csv module (no pyarrow, no catalog)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.domain import catalog, eras
from pipeline.domain.months import MonthKey
from tests.support.data import kind_of, parse_name
from tests.support.fixtures import TLC
from tests.support.lakes import clean_file, clean_table

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
    key = MonthKey(color, year, month)
    quality = clean_file(src, kind_of(name), key, out)

    table = clean_table(out, key)
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
        q = clean_file(src, "csv", MonthKey(color, year, month), tmp_path / src.name)
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
    key = MonthKey("yellow", 2009, 1)
    clean_file(tlc / "eras" / "yellow_tripdata_2009-01.head100.csv", "csv", key, tmp_path / "y")
    t = clean_table(tmp_path / "y", key).to_pandas()
    assert set(t["vendor_id"].dropna()) <= {1, 2, 3}  # VTS/CMT/DDS
    assert set(t["payment_type"].dropna()) <= {1, 2, 3, 4, 5}  # CASH/Credit/...
    assert t["pickup_longitude"].notna().all()
    assert t["pu_location_id"].isna().all()
    first = t.iloc[0]
    assert (first.vendor_id, first.payment_type, first.total_amount) == (2, 2, 9.4)  # VTS, CASH


def test_fhv_2018_coalesces_both_base_number_columns(tlc: Path, tmp_path: Path):
    key = MonthKey("fhv", 2018, 3)
    q = clean_file(tlc / "eras" / "fhv_tripdata_2018-03.head1KB.csv", "csv", key, tmp_path / "f")
    assert q["column_map"]["dispatching_base_num"] == [
        "Dispatching_base_num",
        "Dispatching_base_number",
    ]
    t = clean_table(tmp_path / "f", key)
    assert t["dispatching_base_num"].null_count == 0
    assert set(t["sr_flag"].drop_null().to_pylist()) <= {"Y", "N"}
