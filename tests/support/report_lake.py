"""Lakes for the quality report's tests and its screenshot: synthetic months (tools/synthetic.py,
shaped like the TLC's 2021 yellow parquet) cleaned by the real clean stage, with what the
report must flag planted on purpose (a column that goes missing, a re-cleaned month)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.extract.sources import RawInput, open_source
from pipeline.lake.lake import Lake
from pipeline.transform.clean import clean_month
from tools.synthetic import write_yellow_month


def synthetic_file(
    folder: Path,
    key: MonthKey,
    rows: int,
    seed: int | None = None,
    null_column: str | None = None,
    null_share: float = 0.0,
) -> Path:
    """A synthetic month's raw parquet (any colour: the taxi colours share the 2021 yellow
    headers' aliases); ``null_column`` loses ``null_share`` of its values."""
    path = folder / f"{key.color}_tripdata_{key.year:04d}-{key.month:02d}.parquet"
    if seed is None:
        seed = key.year * 100 + key.month
    write_yellow_month(path, rows, key.year, key.month, seed)
    if null_column is not None:
        table = pq.read_table(path)
        rng = np.random.default_rng(seed)
        mask = rng.random(table.num_rows) < null_share
        i = table.schema.get_field_index(null_column)
        column = table.column(i)
        nulled = pa.array(column.to_numpy(), column.type, mask=mask)
        table = table.set_column(i, table.schema.field(i), nulled)
        pq.write_table(table, path)
    return path


def clean_into(lake: Lake, raw: Path, key: MonthKey) -> QualityReport:
    """Clean a local raw file into ``lake`` with the real clean stage, and publish it."""
    return clean_month(open_source(RawInput.local(raw), "parquet"), key, lake)


def clean_synthetic(
    lake: Lake,
    raw_folder: Path,
    key: MonthKey,
    rows: int,
    seed: int | None = None,
    null_column: str | None = None,
    null_share: float = 0.0,
) -> QualityReport:
    raw = synthetic_file(raw_folder, key, rows, seed, null_column, null_share)
    return clean_into(lake, raw, key)


def reclean(lake: Lake, raw_folder: Path, key: MonthKey, rows: int, seed: int) -> QualityReport:
    """Clean the month again from other data (a new seed): what a re-release of the TLC's
    file after a load looks like to the ledgers."""
    lake.remove_month(key, {"clean"})
    return clean_synthetic(lake, raw_folder, key, rows, seed=seed)
