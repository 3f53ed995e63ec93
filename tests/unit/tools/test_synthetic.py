"""tools/synthetic.py: each colour's month has the header of the parquet era the pipeline knows
for that month, the real clean takes it as it is (dropping only the rows its rules are for), and
the same seed gives the same file. The real files' types: tests/integration/tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.domain import catalog, eras, months
from pipeline.domain.months import MonthKey
from tests.support.lakes import clean_file, clean_table
from tools import synthetic
from tools.synthetic import main, month_schema, write_month, write_yellow_month

LATEST = (2025, 6)  # in the last era of every colour
CASES = [
    ("yellow", 2021, 1),  # yellow is always the 2021 layout
    ("green", 2021, 1),
    ("green", 2023, 6),
    ("green", *LATEST),
    ("fhv", 2021, 1),
    ("fhv", *LATEST),
    ("fhvhv", 2021, 1),
    ("fhvhv", 2024, 6),
    ("fhvhv", *LATEST),
]


def parquet_era(color: str, year: int, month: int) -> eras.Era:
    """The era eras.py gives a month of the TLC's parquet files."""
    ym = f"{year:04d}-{month:02d}"
    found = [
        e
        for e in eras.ERAS
        if e.color == color
        and "parquet" in e.formats
        and e.first <= ym
        and (e.last == "" or ym <= e.last)
    ]
    assert len(found) == 1, (color, ym, found)
    return found[0]


def source_column(color: str, names: list[str], canonical: str) -> str:
    index = catalog.alias_index(color)
    (name,) = [n for n in names if index[catalog.normalise_name(n)].name == canonical]
    return name


@pytest.mark.parametrize(("color", "year", "month"), CASES)
def test_header_is_the_parquet_era_of_the_month(tmp_path: Path, color: str, year: int, month: int):
    path = write_month(color, tmp_path / "m.parquet", 100, year, month)
    schema = pq.read_schema(path)
    assert schema.equals(month_schema(color, year, month))
    expected = list(parquet_era(color, year, month).header)
    if color == "fhvhv" and (year, month) >= (2025, 1):
        expected.append("cbd_congestion_fee")  # the era's note: "2025 adds cbd_congestion_fee"
    assert schema.names == expected


@pytest.mark.parametrize("color", ["green", "fhv", "fhvhv"])
def test_latest_month_has_the_last_era_header(color: str):
    (last,) = [e for e in eras.ERAS if e.color == color and e.last == ""]
    names = month_schema(color, *LATEST).names
    assert names[: len(last.header)] == list(last.header)
    assert names[len(last.header) :] == (["cbd_congestion_fee"] if color == "fhvhv" else [])


@pytest.mark.parametrize(("color", "year", "month"), CASES)
def test_clean_drops_only_stray_months_and_zero_passengers(
    tmp_path: Path, color: str, year: int, month: int
):
    rows = 10_000
    raw_path = write_month(color, tmp_path / f"{color}.parquet", rows, year, month, seed=11)
    raw = pq.read_table(raw_path)
    start, end = (np.datetime64(t, "us") for t in months.bounds(year, month))
    pickup = raw[source_column(color, raw.column_names, "pickup_datetime")].to_numpy()
    in_month = (pickup >= start) & (pickup < end)
    zero = np.zeros(rows, dtype=bool)
    if "passenger_count" in raw.column_names:
        zero = raw["passenger_count"].to_numpy(zero_copy_only=False) == 0  # NaN (null) != 0
    outside = ~zero & ~in_month

    key = MonthKey(color, year, month)
    report = clean_file(raw_path, "parquet", key, tmp_path / "lake")

    assert report["rows_dropped"] == {
        "passenger_count_zero": int(zero.sum()),
        "pickup_outside_month": int(outside.sum()),
        "truncated_last_row": 0,
    }
    assert 0 < outside.sum() < 0.005 * rows  # ~0.05 %: the month rule has work, a little
    assert (zero.sum() > 0) == (color in ("yellow", "green"))
    assert report["rows_out"] == rows - zero.sum() - outside.sum()
    out = clean_table(tmp_path / "lake", key)
    assert out.schema.equals(catalog.arrow_schema(color))
    assert out.num_rows == report["rows_out"]
    # every source column feeds a canonical one, and one that has values keeps them
    mapped = report["column_map"]
    assert sorted(n for names in mapped.values() for n in names) == sorted(raw.column_names)
    for canonical, names in mapped.items():
        if any(raw[n].null_count < rows for n in names):
            assert out[canonical].null_count < out.num_rows, canonical
    if color == "fhvhv":  # the real files' " " is no flag: null once cleaned
        assert set(out["access_a_ride_flag"].to_pylist()) == {"N", "Y", None}


@pytest.mark.parametrize("color", synthetic.COLORS)
def test_same_seed_same_bytes(tmp_path: Path, color: str):
    def write(name: str, seed: int) -> bytes:
        return write_month(color, tmp_path / name, 3_000, 2024, 2, seed).read_bytes()

    assert write("a.parquet", 7) == write("b.parquet", 7)
    assert write("a.parquet", 7) != write("c.parquet", 8)


def test_write_month_yellow_is_write_yellow_month(tmp_path: Path):
    a = write_month("yellow", tmp_path / "a.parquet", 2_000, 2020, 5, seed=3)
    b = write_yellow_month(tmp_path / "b.parquet", 2_000, 2020, 5, seed=3)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("color", synthetic.COLORS)
def test_row_groups_and_compression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, color: str):
    monkeypatch.setattr(synthetic, "ROW_GROUP", 1_000)
    path = write_month(color, tmp_path / "m.parquet", 2_500, 2023, 3)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    codecs = {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    assert codecs == {"SNAPPY"}
    if color != "yellow":  # like the real files, roughly in time order: row group by row group
        start, end = (np.datetime64(t, "us") for t in months.bounds(2023, 3))
        column = source_column(color, meta.schema.names, "pickup_datetime")
        groups = [pq.ParquetFile(path).read_row_group(i)[column].to_numpy() for i in (0, 2)]
        first, last = (g[(g >= start) & (g < end)] for g in groups)
        assert first.max() < last.min()


def test_unknown_colour_and_months_before_the_layouts_fail(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown colour 'blue'"):
        write_month("blue", tmp_path / "m.parquet", 10, 2021, 1)
    with pytest.raises(ValueError, match=r"synthetic fhvhv months start in 2019-02.*2019-01"):
        write_month("fhvhv", tmp_path / "m.parquet", 10, 2019, 1)
    assert not (tmp_path / "m.parquet").exists()


def test_command_line_writes_the_colour_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "fhv.parquet"
    main([str(path), "--color", "fhv", "--rows", "100", "--year", "2024", "--month", "2"])
    assert capsys.readouterr().out.strip() == str(path)
    table = pq.read_table(path)
    assert table.num_rows == 100
    assert table.schema.equals(month_schema("fhv", 2024, 2))
    assert table.schema.field("PUlocationID").type == pa.int64()
