"""Synthetic TLC months for benchmarks and scale tests.

The real files are the truth for correctness (tests read ``../shared/data/tlc``); these are for
size. A generated month has the physical layout of the TLC's 2021 yellow parquet as republished
in 2022: the same column names and Arrow types (``passenger_count``/``RatecodeID`` as double,
``airport_fee`` lower-case, µs timestamps), row groups of about 125k rows, snappy compression,
a few per cent nulls in the same columns, ~2 % ``passenger_count == 0`` and a few rows with a
pickup in another month, so every cleaning rule has work to do.

Generated batch by batch with a seeded NumPy generator: the same arguments give the same file,
and memory stays flat however many rows are asked for.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Column order and types of yellow_tripdata_2021-01.parquet on the TLC CDN.
YELLOW_2021 = pa.schema(
    [
        ("VendorID", pa.int64()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("tpep_dropoff_datetime", pa.timestamp("us")),
        ("passenger_count", pa.float64()),
        ("trip_distance", pa.float64()),
        ("RatecodeID", pa.float64()),
        ("store_and_fwd_flag", pa.string()),
        ("PULocationID", pa.int64()),
        ("DOLocationID", pa.int64()),
        ("payment_type", pa.int64()),
        ("fare_amount", pa.float64()),
        ("extra", pa.float64()),
        ("mta_tax", pa.float64()),
        ("tip_amount", pa.float64()),
        ("tolls_amount", pa.float64()),
        ("improvement_surcharge", pa.float64()),
        ("total_amount", pa.float64()),
        ("congestion_surcharge", pa.float64()),
        ("airport_fee", pa.float64()),
    ]
)

ROWS_2021_01 = 1_369_769  # yellow 2021-01, the course's month
ROWS_2019_01 = 7_696_617  # yellow 2019-01, a busy pre-pandemic month
ROW_GROUP = 125_000
NULL_SHARE = 0.06  # 2021 files: the "unknown vendor" rows have no passenger_count, ratecode, ...
ZERO_PASSENGER_SHARE = 0.02
OTHER_MONTH_SHARE = 0.0005


def yellow_batch(rng: np.random.Generator, n: int, year: int, month: int) -> pa.RecordBatch:
    start = np.datetime64(dt.datetime(year, month, 1), "us")
    end = np.datetime64(dt.datetime(year + month // 12, month % 12 + 1, 1), "us")
    span = int((end - start).astype(np.int64))
    pickup_us = rng.integers(0, span // 1_000_000, n) * 1_000_000  # whole seconds
    stray = rng.random(n) < OTHER_MONTH_SHARE  # real files carry pickups from other years
    pickup_us[stray] -= rng.integers(1, 400, stray.sum()) * 86_400_000_000
    pickup = start + pickup_us.astype("timedelta64[us]")
    duration = rng.gamma(2.0, 420.0, n).astype(np.int64) * 1_000_000
    dropoff = pickup + duration.astype("timedelta64[us]")

    unknown = rng.random(n) < NULL_SHARE
    passengers = rng.choice([1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6], n).astype(np.float64)
    passengers[rng.random(n) < ZERO_PASSENGER_SHARE] = 0.0
    distance = np.round(rng.gamma(1.6, 1.9, n), 2)
    fare = np.round(2.5 + distance * 2.5 + rng.normal(0, 1.5, n), 2)
    tip = np.round(np.where(rng.random(n) < 0.7, fare * rng.uniform(0.1, 0.3, n), 0.0), 2)
    tolls = np.where(rng.random(n) < 0.05, 6.12, 0.0)
    extra = rng.choice([0.0, 0.5, 1.0, 2.5], n)
    total = np.round(fare + tip + tolls + extra + 0.5 + 0.3 + 2.5, 2)

    def nullable(values: np.ndarray, typ: pa.DataType) -> pa.Array:
        return pa.array(values, typ, mask=unknown)

    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.where(unknown, 6, rng.choice([1, 2], n)), pa.int64()),
            pa.array(pickup, pa.timestamp("us")),
            pa.array(dropoff, pa.timestamp("us")),
            nullable(passengers, pa.float64()),
            pa.array(distance, pa.float64()),
            nullable(rng.choice([1.0, 1.0, 1.0, 2.0, 5.0, 99.0], n), pa.float64()),
            pa.array(np.where(rng.random(n) < 0.01, "Y", "N"), pa.string(), mask=unknown),
            pa.array(rng.integers(1, 266, n), pa.int64()),
            pa.array(rng.integers(1, 266, n), pa.int64()),
            pa.array(np.where(unknown, 0, rng.choice([1, 1, 2, 3, 4], n)), pa.int64()),
            pa.array(fare, pa.float64()),
            pa.array(extra, pa.float64()),
            pa.array(np.full(n, 0.5), pa.float64()),
            pa.array(tip, pa.float64()),
            pa.array(tolls, pa.float64()),
            pa.array(np.full(n, 0.3), pa.float64()),
            pa.array(total, pa.float64()),
            nullable(np.full(n, 2.5), pa.float64()),
            nullable(np.where(rng.random(n) < 0.03, 1.25, 0.0), pa.float64()),
        ],
        schema=YELLOW_2021,
    )


def write_yellow_month(
    path: Path, rows: int, year: int = 2021, month: int = 1, seed: int = 2021
) -> Path:
    """Write a synthetic yellow month of ``rows`` rows to ``path`` (returned)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, YELLOW_2021, compression="snappy") as writer:
        done = 0
        while done < rows:
            n = min(ROW_GROUP, rows - done)
            writer.write_batch(yellow_batch(rng, n, year, month), row_group_size=ROW_GROUP)
            done += n
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--rows", type=int, default=ROWS_2021_01)
    ap.add_argument("--year", type=int, default=2021)
    ap.add_argument("--month", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args(argv)
    write_yellow_month(args.path, args.rows, args.year, args.month, args.seed)
    print(args.path)


if __name__ == "__main__":
    main()
