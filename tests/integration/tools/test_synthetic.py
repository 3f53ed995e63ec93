"""tools/synthetic.py against the real green months in shared/data/tlc: a synthetic month has
the real file's Arrow schema, field for field, and nulls in the same columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.synthetic import write_month


def null_columns(table: pa.Table) -> set[str]:
    return {name for name in table.column_names if table[name].null_count}


@pytest.mark.parametrize(("year", "month"), [(2021, 1), (2023, 2)])
def test_green_has_the_real_files_schema(tlc: Path, tmp_path: Path, year: int, month: int):
    name = f"green_tripdata_{year:04d}-{month:02d}.parquet"
    real = pq.read_table(tlc / "months" / name)
    fake = pq.read_table(write_month("green", tmp_path / name, 5_000, year, month))
    assert fake.schema.equals(real.schema), (fake.schema, real.schema)  # metadata aside
    assert null_columns(fake) == null_columns(real)
