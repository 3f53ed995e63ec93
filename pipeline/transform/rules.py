"""Pure Arrow transforms: source batch -> canonical batch -> rules applied.

No IO here. Every function takes Arrow data and catalog entries and returns Arrow data,
so the same code serves the parquet and CSV readers, the tests and the benchmarks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.domain import catalog, months
from pipeline.domain.catalog import Column
from pipeline.domain.errors import CastError, SchemaError

# Rule 2 drops stray pickups from other months: the real files carry a handful (0.01-0.1 %).
# When most rows of a sizeable file are outside the month, it is not this month's file at all
# (a mirror serving the wrong month). A short head can legitimately start with strays: the
# real yellow 2019-01 file opens with 2018-11-28 pickups.
MAX_OUTSIDE_MONTH_SHARE = 0.5
MIN_ROWS_FOR_SHARE_CHECK = 1000

RULES: tuple[str, ...] = ("passenger_count_zero", "pickup_outside_month")


@dataclass(frozen=True)
class ColumnPlan:
    """How one file's columns map onto its colour's canonical schema."""

    color: str
    # canonical name -> indexes of the source columns that feed it, in alias order
    sources: dict[str, tuple[int, ...]]
    source_names: tuple[str, ...]

    def describe(self) -> dict[str, list[str]]:
        return {k: [self.source_names[i] for i in v] for k, v in self.sources.items()}


def plan_columns(color: str, source_names: Sequence[str], file_name: str) -> ColumnPlan:
    """Match a file's header to the catalog. Unknown columns fail: silently dropping a new
    TLC column would lose data without anyone noticing."""
    index = catalog.alias_index(color)
    found: dict[str, list[tuple[int, int]]] = {}
    unknown: list[str] = []
    for i, raw in enumerate(source_names):
        name = catalog.normalise_name(raw)
        if not name:  # the empty names of trailing padding fields
            continue
        col = index.get(name)
        if col is None:
            unknown.append(raw)
            continue
        rank = [catalog.normalise_name(n) for n in col.source_names].index(name)
        found.setdefault(col.name, []).append((rank, i))
    if unknown:
        raise SchemaError(
            f"{file_name}: unknown columns for colour {color}: {unknown}. "
            f"Add them to pipeline/domain/catalog.py if the TLC has changed its schema."
        )
    if catalog.PICKUP_COLUMN not in found:
        raise SchemaError(f"{file_name}: no pickup time column among {list(source_names)}")
    sources = {k: tuple(i for _, i in sorted(v)) for k, v in found.items()}
    return ColumnPlan(color, sources, tuple(source_names))


def normalise_batch(batch: pa.RecordBatch, plan: ColumnPlan, file_name: str) -> pa.RecordBatch:
    """Rename, map values and cast a source batch to the colour's canonical schema."""
    arrays = []
    n = batch.num_rows
    for col in catalog.SCHEMAS[plan.color]:
        idx = plan.sources.get(col.name, ())
        if not idx:
            arrays.append(pa.nulls(n, col.type))
            continue
        parts = [cast_column(batch.column(i), col, file_name, plan.source_names[i]) for i in idx]
        arrays.append(parts[0] if len(parts) == 1 else pc.coalesce(*parts))
    return pa.RecordBatch.from_arrays(arrays, schema=catalog.arrow_schema(plan.color))


def cast_column(arr: pa.Array, col: Column, file_name: str, source_name: str) -> pa.Array:
    """Cast one source column to its canonical type (rule 3). Never turns a bad value into
    NULL: it raises CastError naming the file, column and value."""
    src = arr.type
    if pa.types.is_dictionary(src):
        arr = arr.cast(src.value_type)
        src = arr.type
    if pa.types.is_string(src) or pa.types.is_large_string(src):
        return _cast_strings(arr, col, file_name, source_name)
    if pa.types.is_floating(src):
        arr = _nan_to_null(arr)
    try:
        if pa.types.is_timestamp(src) and pa.types.is_timestamp(col.type):
            if src.tz is not None:
                raise pa.ArrowInvalid(f"time zone {src.tz!r}: the TLC's times are naive local")
            return pc.cast(arr, col.type, safe=False)  # ns -> us loses only sub-µs digits
        out = pc.cast(arr, col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise _cast_error(arr, col, file_name, source_name, e) from None
    if col.values and pa.types.is_string(col.type):
        out = _apply_value_map(out, col)
    return out


def _cast_strings(arr: pa.Array, col: Column, file_name: str, source_name: str) -> pa.Array:
    if col.values:
        arr = _apply_value_map(pc.utf8_trim_whitespace(arr), col)
    if pa.types.is_string(col.type):
        out = arr.cast(pa.string())
        return _blank_to_null(pc.utf8_trim_whitespace(out))
    try:  # fast path: clean numbers and ISO timestamps
        return _to_type(arr, col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    cleaned = _blank_to_null(pc.utf8_trim_whitespace(arr))
    try:
        return _to_type(cleaned, col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise _cast_error(cleaned, col, file_name, source_name, e) from None


def _to_type(arr: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_integer(target):
        try:
            return pc.cast(arr, target)
        except pa.ArrowInvalid:
            # "1.0": CSVs written by pandas from the double-typed parquet of 2019-2022.
            # The second cast is safe, so 1.5 still fails.
            return pc.cast(_nan_to_null(pc.cast(arr, pa.float64())), target)
    out = pc.cast(arr, target)
    return _nan_to_null(out) if pa.types.is_floating(target) else out


def _apply_value_map(arr: pa.Array, col: Column) -> pa.Array:
    # Map the few distinct values, not every row: a flag column has two or three.
    mapping = catalog.VALUE_MAPS[col.values or ""]
    encoded = pc.dictionary_encode(arr.cast(pa.string()))
    distinct = encoded.dictionary
    keys = pa.array(list(mapping), pa.string())
    values = pa.array(list(mapping.values()), pa.string())
    mapped = pc.coalesce(pc.take(values, pc.index_in(pc.utf8_lower(distinct), keys)), distinct)
    return pc.take(mapped, encoded.indices)


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _nan_to_null(arr: pa.Array) -> pa.Array:
    if not pa.types.is_floating(arr.type) or arr.null_count == len(arr):
        return arr
    nan = pc.is_nan(arr)
    if not pc.any(nan).as_py():
        return arr
    return pc.if_else(nan, pa.scalar(None, arr.type), arr)


def _cast_error(
    arr: pa.Array, col: Column, file_name: str, source_name: str, err: Exception
) -> CastError:
    bad = None
    for value in pc.unique(arr.drop_null()).to_pylist()[:5000]:
        try:
            _to_type(pa.array([value], arr.type), col.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = value
            break
    what = f"value {bad!r}" if bad is not None else f"values ({err})"
    return CastError(
        f"{file_name}: column {col.name!r} (source {source_name.strip()!r}, {arr.type}): "
        f"{what} cannot be cast to {col.type}"
    )


def apply_rules(
    batch: pa.RecordBatch, year: int, month: int
) -> tuple[pa.RecordBatch, dict[str, int]]:
    """Apply rules 1 and 2. Each dropped row is counted under the first rule that drops it."""
    counts = dict.fromkeys(RULES, 0)
    keep = pa.array(np.ones(batch.num_rows, dtype=bool))
    names = batch.schema.names
    if catalog.PASSENGER_COLUMN in names:
        zero = pc.fill_null(pc.equal(batch.column(catalog.PASSENGER_COLUMN), 0), False)
        counts["passenger_count_zero"] = pc.sum(zero).as_py() or 0
        keep = pc.invert(zero)
    start, end = months.bounds(year, month)
    pickup = batch.column(catalog.PICKUP_COLUMN)
    in_month = pc.fill_null(
        pc.and_(pc.greater_equal(pickup, _ts(start)), pc.less(pickup, _ts(end))),
        False,
    )
    outside = pc.and_(keep, pc.invert(in_month))
    counts["pickup_outside_month"] = pc.sum(outside).as_py() or 0
    keep = pc.and_(keep, in_month)
    return batch.filter(keep), counts


def _ts(value: dt.datetime) -> pa.Scalar:
    return pa.scalar(value, type=catalog.TS)
