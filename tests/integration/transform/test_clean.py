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
from pipeline.domain.errors import BadSourceFile, LakeWriteError
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local
from pipeline.lake.local import LocalStore
from tests.support.data import expected_from_pandas, kind_of, parse_name
from tests.support.lakes import clean_file, clean_paths, clean_table, files_under

MONTHS = [
    "green_tripdata_2021-01.parquet",
    "green_tripdata_2023-02.parquet",
    "green_tripdata_2020-10.csv.gz",
]


@pytest.mark.parametrize("name", MONTHS)
def test_real_month_counts_match_an_independent_count(name: str, tlc: Path, tmp_path: Path):
    color, year, month = parse_name(name)
    src = tlc / "months" / name
    key = MonthKey(color, year, month)
    q = clean_file(src, kind_of(name), key, tmp_path / "c")
    want = expected_from_pandas(src, year, month)
    assert q["rows_in"] == want["rows_in"]
    assert q["rows_out"] == want["rows_out"]
    assert q["rows_dropped"]["passenger_count_zero"] == want["passenger_count_zero"]
    assert q["rows_dropped"]["pickup_outside_month"] == want["pickup_outside_month"]
    t = clean_table(tmp_path / "c", key)
    assert t.num_rows == want["rows_out"]
    assert t.schema == catalog.arrow_schema(color)
    # null counts in the sidecar are the file's own
    assert q["nulls"] == {c: t[c].null_count for c in t.column_names}
    assert json.loads((tmp_path / "c" / local(tmp_path).quality_name(key)).read_text()) == q


def test_2023_type_change_gives_identical_schemas(tlc: Path, tmp_path: Path):
    before = pq.read_schema(tlc / "months" / "green_tripdata_2021-01.parquet")
    after = pq.read_schema(tlc / "months" / "green_tripdata_2023-02.parquet")
    assert before.field("VendorID").type != after.field("VendorID").type  # the real drift
    a, b = MonthKey("green", 2021, 1), MonthKey("green", 2023, 2)
    clean_file(tlc / "months" / "green_tripdata_2021-01.parquet", "parquet", a, tmp_path / "a")
    clean_file(tlc / "months" / "green_tripdata_2023-02.parquet", "parquet", b, tmp_path / "b")
    (part_a,) = clean_paths(tmp_path / "a", a)
    (part_b,) = clean_paths(tmp_path / "b", b)
    assert pq.read_schema(part_a) == pq.read_schema(part_b)


# -- bad input: one clear error, nothing published ----------------------------------------
def test_wrong_month_file_is_rejected(tlc: Path, tmp_path: Path):
    with pytest.raises(BadSourceFile, match="not that month's file"):
        clean_file(
            tlc / "months" / "green_tripdata_2021-01.parquet",
            "parquet",
            MonthKey("green", 2021, 2),
            tmp_path / "out",
        )
    assert files_under(tmp_path / "out") == []


def test_a_second_clean_of_a_published_month_leaves_the_first_standing(tlc: Path, tmp_path: Path):
    """Two workers cleaning one month: the second's report cannot replace the first's (its
    create-only write loses), its parquet is deleted, and both get the standing report."""
    out = tmp_path / "out"
    src = tlc / "eras" / "yellow_tripdata_2015-01.head100.csv"
    key = MonthKey("yellow", 2015, 1)
    first = clean_file(src, "csv", key, out)
    second = clean_file(src, "csv", key, out)
    assert second == first
    quality = local(out).quality_name(key)
    assert files_under(out) == sorted([quality, *local(out).clean_files(key, first)])


@pytest.mark.parametrize("lands", [True, False], ids=["landed", "not-landed"])
def test_a_clean_months_marker_write_that_raised(
    tmp_path: Path, tlc: Path, monkeypatch: pytest.MonkeyPatch, lands: bool
):
    """As for a download (tests/integration/extract/test_download.py): a marker write that
    raised is read back. Ours stands (its answer was lost): the month is published, its part
    kept. None stands: the error, and the part is gone."""
    real = LocalStore.create_only

    def create_only(self: LocalStore, name: str, data: bytes, metadata: dict) -> bool:
        if lands:
            real(self, name, data, metadata)
        raise LakeWriteError(f"{name}: the write failed")

    monkeypatch.setattr(LocalStore, "create_only", create_only)
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    key = MonthKey("green", 2021, 1)
    if lands:
        report = clean_file(src, "parquet", key, tmp_path)
        assert local(tmp_path).read_quality(key) == report
        assert len(clean_table(tmp_path, key)) == report["rows_out"]
    else:
        with pytest.raises(LakeWriteError, match="the write failed"):
            clean_file(src, "parquet", key, tmp_path)
        assert files_under(tmp_path) == []
