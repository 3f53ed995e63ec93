"""Synthetic TLC months for benchmarks and scale tests, in all four colours.

The real files are the truth for correctness (tests read ``../shared/data/tlc``); these are for
size. A generated month has the physical layout of the TLC's own parquet file: the same column
names in the same order and the same Arrow types, row groups of 125k rows, snappy compression,
nulls in the columns where the real files have them, and a few rows (~0.05 %) with a pickup in
another month, so every cleaning rule has work to do.

* ``yellow``: always the 2021 yellow parquet as republished in 2022 (``passenger_count`` and
  ``RatecodeID`` as double, ``airport_fee`` lower-case), whatever the month; ~2 % of rows have
  ``passenger_count == 0``.
* ``green``, ``fhv``, ``fhvhv``: the layout of the TLC's file for the month asked for, from
  ``LAYOUTS``: the 2019-2022 files as rewritten in 2022, the type change of 2023-02 (int32 ids,
  large_string), and ``cbd_congestion_fee`` from 2025-01; rows roughly in pickup order, row
  group after row group, as in the real files. Green ~0.5 % zero passengers.

Generated batch by batch with a seeded NumPy generator: the same arguments give the same file,
and memory stays flat however many rows are asked for.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


def _write(
    path: Path, schema: pa.Schema, rows: int, make: Callable[[int, int], pa.RecordBatch]
) -> Path:
    """Write ``rows`` rows to ``path``, one row group per ``make(done, n)`` batch. The next batch
    is generated while a thread writes the last one (pyarrow encodes and compresses without the
    GIL), so a month takes about the longer of the two, not their sum; one batch is in flight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        pq.ParquetWriter(path, schema, compression="snappy") as writer,
        ThreadPoolExecutor(1, thread_name_prefix="synthetic-writer") as pool,
    ):
        writing: Future[None] | None = None
        done = 0
        while done < rows:
            n = min(ROW_GROUP, rows - done)
            batch = make(done, n)
            if writing is not None:
                writing.result()
            writing = pool.submit(writer.write_batch, batch, row_group_size=ROW_GROUP)
            done += n
        if writing is not None:
            writing.result()
    return path


def write_yellow_month(
    path: Path, rows: int, year: int = 2021, month: int = 1, seed: int = 2021
) -> Path:
    """Write a synthetic yellow month of ``rows`` rows to ``path`` (returned)."""
    rng = np.random.default_rng(seed)
    return _write(path, YELLOW_2021, rows, lambda _done, n: yellow_batch(rng, n, year, month))


# ---------------------------------------------------------------------------------------
# Green, FHV and FHVHV: the layout of the TLC's file for the month asked for.
TS = pa.timestamp("us")
I32, I64, F64 = pa.int32(), pa.int64(), pa.float64()
STR, LSTR = pa.string(), pa.large_string()


def _schema(fields: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in fields])


def _retyped(schema: pa.Schema, **types: pa.DataType) -> pa.Schema:
    return _schema([(f.name, types.get(f.name, f.type)) for f in schema])


# green_tripdata_2021-01.parquet, field for field: the 2019-2022 months as the TLC rewrote them in
# 2022 (ids int64; passenger_count, RatecodeID, payment_type, trip_type double; ehail_fee of the
# null type: it is empty in every row). shared/data/tlc/months has the real file.
GREEN_2021 = _schema(
    [
        ("VendorID", I64),
        ("lpep_pickup_datetime", TS),
        ("lpep_dropoff_datetime", TS),
        ("store_and_fwd_flag", STR),
        ("RatecodeID", F64),
        ("PULocationID", I64),
        ("DOLocationID", I64),
        ("passenger_count", F64),
        ("trip_distance", F64),
        ("fare_amount", F64),
        ("extra", F64),
        ("mta_tax", F64),
        ("tip_amount", F64),
        ("tolls_amount", F64),
        ("ehail_fee", pa.null()),
        ("improvement_surcharge", F64),
        ("total_amount", F64),
        ("payment_type", F64),
        ("trip_type", F64),
        ("congestion_surcharge", F64),
    ]
)
# green_tripdata_2023-02.parquet (also in shared/data/tlc/months): the type change of 2023-02.
GREEN_2023 = _retyped(
    GREEN_2021,
    VendorID=I32,
    store_and_fwd_flag=LSTR,
    RatecodeID=I64,
    PULocationID=I32,
    DOLocationID=I32,
    passenger_count=I64,
    ehail_fee=F64,
    payment_type=I64,
    trip_type=I64,
)
GREEN_2025 = GREEN_2023.append(pa.field("cbd_congestion_fee", F64))

# The CDN's FHV parquet has the header of eras.py's last FHV era from 2019-01 on (the era says
# 2021-01: the 2019-2020 CSVs differ, the parquet rewrite of 2022 does not). Location ids double
# and SR_Flag of the null type until 2023-01; int64 ids and SR_Flag, large_string, after.
FHV_2019 = _schema(
    [
        ("dispatching_base_num", STR),
        ("pickup_datetime", TS),
        ("dropOff_datetime", TS),
        ("PUlocationID", F64),
        ("DOlocationID", F64),
        ("SR_Flag", pa.null()),
        ("Affiliated_base_number", STR),
    ]
)
FHV_2023 = _retyped(
    FHV_2019,
    dispatching_base_num=LSTR,
    PUlocationID=I64,
    DOlocationID=I64,
    SR_Flag=I64,
    Affiliated_base_number=LSTR,
)

# The CDN's FHVHV parquet (eras.py's last FHVHV era, 24 columns) from 2019-02: strings, µs
# timestamps, int64 ids until 2023-01; large_string and int32 ids from 2023-02; 2025-01 adds
# cbd_congestion_fee (the era's note).
_FHVHV_FLAGS = (
    "shared_request_flag",
    "shared_match_flag",
    "access_a_ride_flag",
    "wav_request_flag",
    "wav_match_flag",
)
FHVHV_2019 = _schema(
    [
        ("hvfhs_license_num", STR),
        ("dispatching_base_num", STR),
        ("originating_base_num", STR),
        ("request_datetime", TS),
        ("on_scene_datetime", TS),
        ("pickup_datetime", TS),
        ("dropoff_datetime", TS),
        ("PULocationID", I64),
        ("DOLocationID", I64),
        ("trip_miles", F64),
        ("trip_time", I64),
        ("base_passenger_fare", F64),
        ("tolls", F64),
        ("bcf", F64),
        ("sales_tax", F64),
        ("congestion_surcharge", F64),
        ("airport_fee", F64),
        ("tips", F64),
        ("driver_pay", F64),
        *((flag, STR) for flag in _FHVHV_FLAGS),
    ]
)
FHVHV_2023 = _retyped(
    FHVHV_2019,
    hvfhs_license_num=LSTR,
    dispatching_base_num=LSTR,
    originating_base_num=LSTR,
    PULocationID=I32,
    DOLocationID=I32,
    **dict.fromkeys(_FHVHV_FLAGS, LSTR),
)
FHVHV_2025 = FHVHV_2023.append(pa.field("cbd_congestion_fee", F64))

# colour -> (first month "YYYY-MM", schema), oldest first; a month gets the last one that
# starts on or before it. Short-lived wobbles of single months are not reproduced (green
# ehail_fee double in 2019-01..08; FHV SR_Flag double in 2019-01..02 and int64 ids in 2019-05..06;
# FHVHV airport_fee or wav_match_flag of the null type in a few 2019-2020 months).
LAYOUTS: dict[str, tuple[tuple[str, pa.Schema], ...]] = {
    "green": (("2019-01", GREEN_2021), ("2023-02", GREEN_2023), ("2025-01", GREEN_2025)),
    "fhv": (("2019-01", FHV_2019), ("2023-02", FHV_2023)),
    "fhvhv": (("2019-02", FHVHV_2019), ("2023-02", FHVHV_2023), ("2025-01", FHVHV_2025)),
}
COLORS = ("yellow", *LAYOUTS)

# About one real month of each colour, for the command line's default.
ROWS_GREEN_2021_01 = 76_518
ROWS_FHV = 1_500_000  # the order of a real month: one to two million rows
ROWS_FHVHV = 20_000_000  # about a 2023-2025 month
DEFAULT_ROWS = {
    "yellow": ROWS_2021_01,
    "green": ROWS_GREEN_2021_01,
    "fhv": ROWS_FHV,
    "fhvhv": ROWS_FHVHV,
}

GREEN_NULL_SHARE = 0.10  # real: 47 % in 2021-01, 7 % in 2023-02 (no passenger count, ratecode...)
GREEN_ZERO_PASSENGER_SHARE = 0.005
FHV_PU_NULL_SHARE = 0.25
FHV_DO_NULL_SHARE = 0.15
FHVHV_UBER_SHARE = 0.72

_DAY_S = 86_400
Part = tuple[float, float]  # the share of the month a batch covers: [from, to)


def month_schema(color: str, year: int, month: int) -> pa.Schema:
    """The Arrow schema of the synthetic ``color`` file for ``year-month``."""
    if color == "yellow":
        return YELLOW_2021
    if color not in LAYOUTS:
        raise ValueError(f"unknown colour {color!r}: expected one of {', '.join(COLORS)}")
    ym = f"{year:04d}-{month:02d}"
    schemas = [schema for first, schema in LAYOUTS[color] if first <= ym]
    if not schemas:
        first = LAYOUTS[color][0][0]
        raise ValueError(
            f"synthetic {color} months start in {first} (the TLC's parquet layout before is not "
            f"modelled); got {ym}"
        )
    return schemas[-1]


def _month_pickups(
    rng: np.random.Generator, n: int, year: int, month: int, part: Part
) -> np.ndarray:
    """Whole-second pickups in the ``part`` of the month (the real files run roughly in time
    order), ~0.05 % of them outside the month: most up to 400 days before (the real files carry
    pickups from years back), a fifth on the day after."""
    start = np.datetime64(dt.datetime(year, month, 1), "s")
    end = np.datetime64(dt.datetime(year + month // 12, month % 12 + 1, 1), "s")
    span = int((end - start).astype(np.int64))
    lo, hi = int(span * part[0]), int(span * part[1])
    seconds = rng.integers(lo, max(hi, lo + 1), n)
    stray = np.flatnonzero(rng.random(n) < OTHER_MONTH_SHARE)
    after = rng.random(stray.size) < 0.2
    seconds[stray] = np.where(
        after,
        span + rng.integers(0, _DAY_S, stray.size),
        -rng.integers(1, 400 * _DAY_S, stray.size),
    )
    return (start + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def _seconds(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64).astype("timedelta64[s]")


def _pick(rng: np.random.Generator, n: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indexes 0..len(weights)-1 drawn with the given (relative) weights."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right")


def _choice(
    rng: np.random.Generator, n: int, values: Sequence[float], weights: Sequence[float]
) -> np.ndarray:
    return np.asarray(values)[_pick(rng, n, weights)]


def _take(dictionary: pa.Array, indices: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Strings by index into a small dictionary; masked rows are null."""
    return pc.take(dictionary, pa.array(indices.astype(np.int32), pa.int32(), mask=mask))


def _money(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


Columns = dict[str, pa.Array | np.ndarray | None]


def _conform(columns: Columns, schema: pa.Schema, n: int) -> pa.RecordBatch:
    """A batch with exactly ``schema``'s fields: each column cast to the layout's type; a
    ``None`` column (empty in every real row) becomes nulls of that type."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        if values is None:
            arrays.append(pa.nulls(n, field.type))
            continue
        arr = values if isinstance(values, pa.Array) else pa.array(values)
        arrays.append(arr if arr.type == field.type else arr.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_FLAGS_NY = pa.array(["N", "Y"], STR)


def green_batch(
    rng: np.random.Generator, n: int, year: int, month: int, schema: pa.Schema, part: Part
) -> pa.RecordBatch:
    pickup = _month_pickups(rng, n, year, month, part)
    dropoff = pickup + _seconds(rng.gamma(2.0, 420.0, n))
    unknown = rng.random(n) < GREEN_NULL_SHARE  # no flag, ratecode, passengers, payment, type

    passengers = _choice(rng, n, [1, 2, 3, 4, 5, 6], [85, 6, 1, 0.5, 2, 1])
    passengers[rng.random(n) < GREEN_ZERO_PASSENGER_SHARE] = 0
    distance = _money(rng.gamma(1.6, 1.9, n))
    fare = _money(2.5 + distance * 2.5 + rng.normal(0, 1.5, n))
    payment = _choice(rng, n, [1, 2, 3, 4], [60, 38, 1.5, 0.5])
    tip = _money(np.where(payment == 1, fare * rng.uniform(0.0, 0.3, n), 0.0))
    tolls = np.where(rng.random(n) < 0.05, 6.12, 0.0)
    extra = _choice(rng, n, [0.0, 0.5, 1.0, 2.75], [60, 7, 10, 23])
    mta = np.where(rng.random(n) < 0.95, 0.5, 0.0)
    improvement = np.full(n, 1.0 if year >= 2023 else 0.3)
    congestion = np.where(rng.random(n) < 0.2, 2.75, 0.0)
    cbd = np.where(rng.random(n) < 0.05, 0.75, 0.0)
    total = fare + extra + mta + tip + tolls + improvement + np.where(unknown, 0.0, congestion)
    if "cbd_congestion_fee" in schema.names:
        total += cbd

    return _conform(
        {
            "VendorID": _choice(rng, n, [1, 2], [1, 9]),
            "lpep_pickup_datetime": pickup,
            "lpep_dropoff_datetime": dropoff,
            "store_and_fwd_flag": _take(_FLAGS_NY, rng.random(n) < 0.005, unknown),
            "RatecodeID": pa.array(
                _choice(rng, n, [1, 2, 3, 4, 5, 99], [95, 0.5, 0.1, 0.1, 4, 0.01]), mask=unknown
            ),
            "PULocationID": rng.integers(1, 266, n),
            "DOLocationID": rng.integers(1, 266, n),
            "passenger_count": pa.array(passengers, mask=unknown),
            "trip_distance": distance,
            "fare_amount": fare,
            "extra": extra,
            "mta_tax": mta,
            "tip_amount": tip,
            "tolls_amount": tolls,
            "ehail_fee": None,
            "improvement_surcharge": improvement,
            "total_amount": _money(total),
            "payment_type": pa.array(payment, mask=unknown),
            "trip_type": pa.array(_choice(rng, n, [1, 2], [97, 3]), mask=unknown),
            "congestion_surcharge": pa.array(congestion, mask=unknown),
            "cbd_congestion_fee": cbd,
        },
        schema,
        n,
    )


# Several hundred bases dispatch FHV trips, a few of them most; fixed, so every file shares them.
_FHV_BASE_NUMBERS = np.sort(np.random.default_rng(0).choice(np.arange(1, 3500), 400, False))
_FHV_BASES = pa.array([f"B{i:05d}" for i in _FHV_BASE_NUMBERS], STR)
_FHV_BASE_WEIGHTS = 1.0 / (np.random.default_rng(1).permutation(len(_FHV_BASES)) + 3.0)


def fhv_batch(
    rng: np.random.Generator, n: int, year: int, month: int, schema: pa.Schema, part: Part
) -> pa.RecordBatch:
    pickup = _month_pickups(rng, n, year, month, part)
    dropoff = pickup + _seconds(rng.gamma(2.0, 600.0, n))
    base = _pick(rng, n, _FHV_BASE_WEIGHTS)
    # the affiliated base: mostly the dispatching one, sometimes another, now and then none
    r = rng.random(n)
    affiliated = np.where(r < 0.9, base, rng.integers(0, len(_FHV_BASES), n))
    shared = rng.random(n) < 0.01  # SR_Flag 1; null otherwise (and in every 2019-2022 row)
    return _conform(
        {
            "dispatching_base_num": _take(_FHV_BASES, base),
            "pickup_datetime": pickup,
            "dropOff_datetime": dropoff,
            "PUlocationID": pa.array(
                rng.integers(1, 266, n), mask=rng.random(n) < FHV_PU_NULL_SHARE
            ),
            "DOlocationID": pa.array(
                rng.integers(1, 266, n), mask=rng.random(n) < FHV_DO_NULL_SHARE
            ),
            "SR_Flag": pa.array(np.ones(n, np.int64), mask=~shared)
            if pa.types.is_integer(schema.field("SR_Flag").type)
            else None,
            "Affiliated_base_number": _take(_FHV_BASES, affiliated, r > 0.97),
        },
        schema,
        n,
    )


# Uber (HV0003) dispatches through many bases, Lyft (HV0005) through B02510 nearly always.
_UBER_BASES = [
    "B02764", "B02765", "B02835", "B02836", "B02864", "B02865", "B02866", "B02867", "B02869",
    "B02870", "B02871", "B02872", "B02875", "B02876", "B02877", "B02878", "B02879", "B02880",
    "B02882", "B02883", "B02884", "B02887", "B02888", "B02889", "B03404", "B03406",
]  # fmt: skip
_HV_BASES = pa.array([*_UBER_BASES, "B02510", "B02844"], STR)
_HV_LICENSES = pa.array(["HV0003", "HV0005"], STR)
_ACCESS_A_RIDE = pa.array(["N", "Y", " "], STR)  # the real files have " " for some rows


def fhvhv_batch(
    rng: np.random.Generator, n: int, year: int, month: int, schema: pa.Schema, part: Part
) -> pa.RecordBatch:
    pickup = _month_pickups(rng, n, year, month, part)
    uber = rng.random(n) < FHVHV_UBER_SHARE
    lyft = ~uber
    n_uber = len(_UBER_BASES)
    dispatching = np.where(
        uber, rng.integers(0, n_uber, n), n_uber + (rng.random(n) < 0.02).astype(np.int64)
    )
    originating = np.where(rng.random(n) < 0.85, dispatching, rng.integers(0, n_uber, n))

    wait = rng.gamma(2.0, 150.0, n)  # request -> pickup
    request = pickup - _seconds(wait)
    on_scene = pickup - _seconds(np.minimum(rng.gamma(1.0, 40.0, n), wait))
    trip_time = np.maximum(rng.gamma(2.2, 520.0, n).astype(np.int64), 1)
    dropoff = pickup + trip_time.astype("timedelta64[s]")
    miles = np.round(trip_time / 3600.0 * rng.gamma(6.0, 2.0, n), 2)

    fare = _money(np.maximum(2.5 + 1.2 * miles + 0.55 * trip_time / 60 + rng.normal(0, 2, n), 5))
    tips = _money(np.where(rng.random(n) < 0.2, fare * rng.uniform(0.1, 0.25, n), 0.0))
    shared_request = rng.random(n) < 0.01
    return _conform(
        {
            "hvfhs_license_num": _take(_HV_LICENSES, lyft),
            "dispatching_base_num": _take(_HV_BASES, dispatching),
            "originating_base_num": _take(_HV_BASES, originating, lyft),  # Lyft: none
            "request_datetime": request,
            "on_scene_datetime": pa.array(on_scene, TS, mask=lyft),  # Lyft: none
            "pickup_datetime": pickup,
            "dropoff_datetime": dropoff,
            "PULocationID": rng.integers(1, 266, n),
            "DOLocationID": rng.integers(1, 266, n),
            "trip_miles": miles,
            "trip_time": trip_time,
            "base_passenger_fare": fare,
            "tolls": np.where(rng.random(n) < 0.05, 6.94, 0.0),
            "bcf": _money(fare * 0.0275),
            "sales_tax": _money(fare * 0.08875),
            "congestion_surcharge": np.where(rng.random(n) < 0.45, 2.75, 0.0),
            "airport_fee": pa.array(
                np.where(rng.random(n) < 0.04, 2.5, 0.0), mask=rng.random(n) < 0.01
            ),
            "tips": tips,
            "driver_pay": _money(fare * rng.uniform(0.6, 0.85, n) + tips),
            "shared_request_flag": _take(_FLAGS_NY, shared_request),
            "shared_match_flag": _take(_FLAGS_NY, shared_request & (rng.random(n) < 0.5)),
            "access_a_ride_flag": _take(_ACCESS_A_RIDE, _pick(rng, n, [74.9, 0.1, 25])),
            "wav_request_flag": _take(_FLAGS_NY, rng.random(n) < 0.01),
            "wav_match_flag": _take(_FLAGS_NY, rng.random(n) < 0.06),
            "cbd_congestion_fee": np.where(rng.random(n) < 0.3, 1.5, 0.0),
        },
        schema,
        n,
    )


Batch = Callable[[np.random.Generator, int, int, int, pa.Schema, Part], pa.RecordBatch]
BATCHES: dict[str, Batch] = {"green": green_batch, "fhv": fhv_batch, "fhvhv": fhvhv_batch}


def write_month(color: str, path: Path, rows: int, year: int, month: int, seed: int = 2021) -> Path:
    """Write a synthetic ``color`` month of ``rows`` rows to ``path`` (returned), in the layout
    of the TLC's parquet file for that month (yellow: always the 2021 layout)."""
    if color == "yellow":
        return write_yellow_month(path, rows, year, month, seed)
    schema = month_schema(color, year, month)
    batch = BATCHES[color]
    rng = np.random.default_rng(seed)

    def make(done: int, n: int) -> pa.RecordBatch:
        return batch(rng, n, year, month, schema, (done / rows, (done + n) / rows))

    return _write(path, schema, rows, make)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--color", choices=COLORS, default="yellow")
    ap.add_argument(
        "--rows", type=int, default=None, help="default: about one real month of the colour"
    )
    ap.add_argument("--year", type=int, default=2021)
    ap.add_argument("--month", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args(argv)
    rows = DEFAULT_ROWS[args.color] if args.rows is None else args.rows
    write_month(args.color, args.path, rows, args.year, args.month, args.seed)
    print(args.path)


if __name__ == "__main__":
    main()
