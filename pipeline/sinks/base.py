"""The contract every warehouse keeps, and the load ledger they all write.

A sink (one folder or module per destination, as in dlt) offers:

- ``replace_month(report, files, progress)``: load a clean month so that readers see the old
  month or the new one, never half of either, and write its ledger row in the same
  transaction. ``files`` are the month's parquet files (paths, or ``gs://`` URIs for
  BigQuery); ``progress(rows_done, rows_total)`` is called while it runs, where the
  destination can tell.
- ``loaded(key)`` and, in one read for a whole backfill, ``loaded_months()``: ledger rows.
- ``load_zones(table, sha256)`` and ``zones_loaded()``: the zone lookup, with a ledger row of
  its own kind.
- ``forget(key)`` / ``forget_zones()``: drop a ledger row, so the next run loads again (the
  rows stay until that load replaces them).

**The load ledger** ``_pipeline_loads`` has the same columns in every sink (``LEDGER``), one
row per loaded month (``kind = 'month'``) and one for the zones (``kind = 'zones'``). Luigi's
targets read it; ``tlc-status`` and the report read it too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from pipeline.domain import quality
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import QualityReport
from pipeline.domain.version import VERSION

if TYPE_CHECKING:
    from pipeline.lake.lake import Digest

LEDGER_TABLE = "_pipeline_loads"
MONTH, ZONES = "month", "zones"

# (column, Arrow type): each sink maps these to its own SQL types.
LEDGER: tuple[tuple[str, pa.DataType], ...] = (
    ("kind", pa.string()),  # "month" or "zones"
    ("table_name", pa.string()),  # where it was loaded: {color}_trips (or --table_name), taxi_zones
    ("color", pa.string()),  # NULL for the zones
    ("year", pa.int32()),
    ("month", pa.int32()),
    ("rows_in", pa.int64()),  # rows in the TLC's file; for the zones, the lookup's rows
    ("rows_out", pa.int64()),  # rows loaded
    ("rows_dropped", pa.string()),  # JSON object: rule -> rows it dropped
    ("source_sha256", pa.string()),  # the raw file (or zone lookup) it came from
    ("clean_sha256", pa.string()),  # the clean files it was loaded from
    ("code_version", pa.string()),
    ("loaded_at", pa.timestamp("us")),  # UTC
    ("seconds", pa.float64()),  # how long the load took
    ("load_id", pa.string()),  # the sink's own name for the load (BigQuery: the swap job)
)
LEDGER_COLUMNS = tuple(name for name, _ in LEDGER)

CopyProgress = Callable[[int, int], None]  # (rows done, rows expected)


@dataclass(frozen=True)
class LoadRecord:
    """One ledger row."""

    kind: str
    table_name: str
    color: str | None
    year: int | None
    month: int | None
    rows_in: int | None
    rows_out: int
    rows_dropped: dict[str, int]
    source_sha256: str
    clean_sha256: str
    code_version: str
    loaded_at: dt.datetime
    seconds: float
    load_id: str = field(default="")

    @classmethod
    def for_month(
        cls, report: QualityReport, table: str, rows: int, seconds: float, load_id: str = ""
    ) -> LoadRecord:
        return cls(
            MONTH,
            table,
            report["color"],
            report["year"],
            report["month"],
            report["rows_in"],
            rows,
            dict(report["rows_dropped"]),
            quality.source_sha256(report),
            quality.clean_sha256(report),
            VERSION,
            now(),
            round(seconds, 3),
            load_id,
        )

    @classmethod
    def for_zones(cls, table: str, rows: int, sha256: str, seconds: float) -> LoadRecord:
        return cls(ZONES, table, None, None, None, rows, rows, {}, sha256, sha256, VERSION,
                   now(), round(seconds, 3))  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, object]) -> LoadRecord:
        """From a ledger row as a sink's driver returns it (dropped rules as JSON text)."""
        dropped = row.get("rows_dropped") or "{}"
        loaded_at = row["loaded_at"]
        assert isinstance(loaded_at, dt.datetime)
        return cls(
            kind=str(row["kind"]),
            table_name=str(row["table_name"]),
            color=_opt_str(row["color"]),
            year=_opt_int(row["year"]),
            month=_opt_int(row["month"]),
            rows_in=_opt_int(row["rows_in"]),
            rows_out=int(str(row["rows_out"])),
            rows_dropped=json.loads(str(dropped)),
            source_sha256=str(row["source_sha256"] or ""),
            clean_sha256=str(row["clean_sha256"] or ""),
            code_version=str(row["code_version"] or ""),
            loaded_at=loaded_at.replace(tzinfo=None),
            seconds=float(str(row["seconds"] or 0)),
            load_id=str(row.get("load_id") or ""),
        )

    def values(self) -> list[object]:
        """The row in LEDGER_COLUMNS order, dropped rules as JSON text."""
        return [
            self.kind,
            self.table_name,
            self.color,
            self.year,
            self.month,
            self.rows_in,
            self.rows_out,
            json.dumps(self.rows_dropped, sort_keys=True),
            self.source_sha256,
            self.clean_sha256,
            self.code_version,
            self.loaded_at,
            self.seconds,
            self.load_id,
        ]

    @property
    def key(self) -> MonthKey | None:
        if self.kind != MONTH or self.color is None or self.year is None or self.month is None:
            return None
        return MonthKey(self.color, self.year, self.month)

    def matches(self, report: QualityReport | None) -> bool:
        """Whether this load is of the clean month at hand (when the lake still has it): the
        same clean files and rows, so a re-cleaned month is loaded again."""
        if report is None:
            return True
        return self.rows_out == report["rows_out"] and self.clean_sha256 == quality.clean_sha256(
            report
        )

    def matches_digest(self, digest: Digest | None) -> bool:
        """``matches`` for a report's digest (rows out and clean files), None: no report."""
        return digest is None or (self.rows_out, self.clean_sha256) == (
            digest.rows_out,
            digest.clean_sha256,
        )


def now() -> dt.datetime:
    """UTC, without a zone: every ledger stores naive UTC timestamps."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def latest(records: Sequence[LoadRecord]) -> dict[MonthKey, LoadRecord]:
    """The newest month row per month (a ledger keeps one, but be safe with old ones)."""
    out: dict[MonthKey, LoadRecord] = {}
    for r in sorted(records, key=lambda r: r.loaded_at):
        if r.key is not None:
            out[r.key] = r
    return out


class Sink(Protocol):
    """What tasks, targets, backfills and tools ask of a warehouse."""

    def replace_month(
        self, report: QualityReport, files: Sequence[str], progress: CopyProgress | None = None
    ) -> LoadRecord: ...

    def loaded(self, key: MonthKey) -> LoadRecord | None: ...

    def loaded_months(self) -> dict[MonthKey, LoadRecord]: ...

    def load_zones(self, table: pa.Table, sha256: str) -> LoadRecord: ...

    def zones_loaded(self) -> LoadRecord | None: ...

    def forget(self, key: MonthKey) -> bool: ...

    def forget_zones(self) -> bool: ...
