"""Pure transforms, with generated inputs where inputs vary."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import catalog
from pipeline.domain.errors import CastError, SchemaError
from pipeline.transform import rules as transform

YELLOW = {c.name: c for c in catalog.SCHEMAS["yellow"]}


def cast(values, src_type, column: str):
    return transform.cast_column(pa.array(values, src_type), YELLOW[column], "f.csv", column)


def test_value_maps_turn_2009_words_into_codes():
    got = cast(
        ["CASH", "Credit", " No Charge", "Dispute", "CSH", "Cre", "2", None],
        pa.string(),
        "payment_type",
    )
    assert got.to_pylist() == [2, 1, 3, 4, 2, 1, 2, None]
    assert cast(["VTS", "CMT", "DDS", "1"], pa.string(), "vendor_id").to_pylist() == [2, 1, 3, 1]
    assert cast(["0", "1", "N", "y", "", None], pa.string(), "store_and_fwd_flag").to_pylist() == [
        "N",
        "Y",
        "N",
        "Y",
        None,
        None,
    ]


def test_unknown_word_is_a_cast_error_not_a_null():
    with pytest.raises(CastError, match=r"f\.csv: column 'payment_type'.*'BITCOIN'"):
        cast(["CASH", "BITCOIN"], pa.string(), "payment_type")


def test_pandas_style_floats_in_csv_cast_to_integers():
    assert cast(["1.0", "2", None, " 3 "], pa.string(), "passenger_count").to_pylist() == [
        1,
        2,
        None,
        3,
    ]


@given(st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=50))
def test_double_typed_integers_round_trip(values):
    """The pre-2023 files store ids and counts as double: they must come back exact."""
    doubles = [None if v is None else float(v) for v in values]
    assert cast(doubles, pa.float64(), "pu_location_id").to_pylist() == values


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)))
def test_fractional_double_into_integer_column_fails(f):
    with pytest.raises(CastError, match="pu_location_id"):
        cast([1.0, f], pa.float64(), "pu_location_id")


def test_int64_overflowing_int32_fails():
    with pytest.raises(CastError, match="ratecode_id"):
        cast([1, 2**40], pa.int64(), "ratecode_id")


def test_nanosecond_timestamps_become_microseconds():
    got = cast([dt.datetime(2021, 1, 1, 0, 0, 1)], pa.timestamp("ns"), "pickup_datetime")
    assert got.type == pa.timestamp("us")


def test_timezone_aware_timestamps_are_refused():
    with pytest.raises(CastError, match="time zone"):
        cast([dt.datetime(2021, 1, 1)], pa.timestamp("us", tz="UTC"), "pickup_datetime")


def test_plan_rejects_unknown_and_missing_pickup():
    with pytest.raises(SchemaError, match=r"unknown columns.*'tip_in_btc'"):
        transform.plan_columns("yellow", ["tpep_pickup_datetime", "tip_in_btc"], "f.parquet")
    with pytest.raises(SchemaError, match="no pickup time column"):
        transform.plan_columns("yellow", ["VendorID", ""], "f.parquet")


def test_plan_ignores_padding_and_ranks_aliases():
    plan = transform.plan_columns(
        "fhv", ["Dispatching_base_number", "Pickup_date", "Dispatching_base_num", "", ""], "f"
    )
    assert plan.sources["dispatching_base_num"] == (2, 0)  # canonical spelling first


ts = st.one_of(
    st.none(),
    st.datetimes(min_value=dt.datetime(2020, 11, 1), max_value=dt.datetime(2021, 3, 1)),
)


@settings(max_examples=200)
@given(st.lists(st.tuples(ts, st.one_of(st.none(), st.integers(0, 6))), max_size=200))
def test_rules_account_for_every_row(rows):
    schema = catalog.arrow_schema("yellow")
    batch = pa.RecordBatch.from_pydict(
        {
            name: (
                [r[0] for r in rows]
                if name == "pickup_datetime"
                else [r[1] for r in rows]
                if name == "passenger_count"
                else [None] * len(rows)
            )
            for name in schema.names
        },
        schema=schema,
    )
    kept, counts = transform.apply_rules(batch, 2021, 1)
    start, end = dt.datetime(2021, 1, 1), dt.datetime(2021, 2, 1)
    zero = sum(1 for _, p in rows if p == 0)
    inside = [(t, p) for t, p in rows if p != 0 and t is not None and start <= t < end]
    assert counts["passenger_count_zero"] == zero
    assert kept.num_rows == len(inside)
    assert counts["pickup_outside_month"] == len(rows) - zero - len(inside)
    assert kept.column("passenger_count").to_pylist() == [p for _, p in inside]
