"""What several test modules know about the real TLC files in ../shared/data/tlc: which months
they use, what each bad file is, and the counts derived independently of the pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline.domain.quality import QualityReport

# The real green months the sink tests load (in ../shared/data/tlc/months).
GREEN = {
    (2021, 1): "green_tripdata_2021-01.parquet",
    (2023, 2): "green_tripdata_2023-02.parquet",
}

BAD_FILES = {
    # file in shared/data/tlc/bad -> (format it is served as, the cause the error must name)
    "yellow_tripdata_2021-01.truncated.parquet": ("parquet", "truncated parquet file"),
    "yellow_tripdata_2022-01.html-error-page.parquet": ("parquet", "an HTML page"),
    "yellow_tripdata_2021-01.empty.csv.gz": ("csv.gz", "empty file"),
    "fhvhv_tripdata.parquet-bytes-under-csv-name.csv": ("csv.gz", "not a gzip file"),
}

NAME = re.compile(r"(?P<color>[a-z]+)_tripdata_(?P<year>\d{4})-(?P<month>\d{2})")


def parse_name(name: str) -> tuple[str, int, int]:
    m = NAME.match(name)
    assert m, name
    return m["color"], int(m["year"]), int(m["month"])


def kind_of(name: str) -> str:
    return "parquet" if name.endswith(".parquet") else "csv.gz" if name.endswith(".gz") else "csv"


def expected_from_pandas(path: Path, year: int, month: int) -> dict[str, int]:
    """A green month's counts by pandas, independently of the pipeline's code."""
    if path.name.endswith(".parquet"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, parse_dates=["lpep_pickup_datetime"], low_memory=False)
    zero = df["passenger_count"] == 0
    start, end = (
        pd.Timestamp(year, month, 1),
        pd.Timestamp(year, month, 1) + pd.DateOffset(months=1),
    )
    inside = (df["lpep_pickup_datetime"] >= start) & (df["lpep_pickup_datetime"] < end)
    return {
        "rows_in": len(df),
        "rows_out": int((~zero & inside).sum()),
        "passenger_count_zero": int(zero.sum()),
        "pickup_outside_month": int((~zero & ~inside).sum()),
    }


def sample_report() -> QualityReport:
    """A quality report shaped like the one CleanParquet writes for green 2021-01."""
    return {
        "color": "green", "year": 2021, "month": 1,
        "source_file": "green_tripdata_2021-01.parquet", "source_format": "parquet",
        "source_manifest": {"url": "http://127.0.0.1/trip-data/green_tripdata_2021-01.parquet",
                            "format": "parquet", "bytes": 1_333_518, "sha256": "ab" * 32},
        "column_map": {"pickup_datetime": ["lpep_pickup_datetime"]},
        "rows_in": 76_518, "rows_out": 76_368,
        "rows_dropped": {"passenger_count_zero": 143, "pickup_outside_month": 7},
        "rows_repaired": 0, "nulls": {"pickup_datetime": 0},
        "files": [{"name": "part-0.parquet", "rows": 76_368, "bytes": 1_200_000,
                   "sha256": "cd" * 32, "crc32c": "AAAAAA=="}],
        "compression": "zstd(3)", "code_version": "0.1.0",
        "cleaned_at": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
