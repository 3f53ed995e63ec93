"""Warehouses a clean month is loaded into. One module per destination (as in dlt).

Each sink offers the same three operations, so tasks and tests treat them alike:

- ``replace_month(color, year, month, files, quality, progress=None)``: load a clean month so
  that readers see the old month or the new one, never half of either; record a load marker in
  the same transaction. ``progress(rows_done, rows_total)`` is called while it runs, where the
  destination can tell.
- ``loaded(color, year, month)``: the marker, or None.
- ``replace_zones(table, sha256)``: (re)load ``taxi_zones``.
- ``forget(color, year, month)``: drop the month's marker, so the next run reloads it.

``duckdb.py`` is the embedded default; ``postgres.py`` loads PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


class Sink(Protocol):
    def replace_month(
        self,
        color: str,
        year: int,
        month: int,
        files: list[Path],
        quality: dict[str, Any],
        progress: Callable[[int, int], None] | None = None,
    ) -> int: ...

    def loaded(self, color: str, year: int, month: int) -> dict[str, Any] | None: ...

    def replace_zones(self, table: pa.Table, sha256: str) -> int: ...

    def forget(self, color: str, year: int, month: int) -> bool: ...


def marker_matches(marker: dict[str, Any] | None, quality: dict[str, Any] | None) -> bool:
    """A load is complete when its marker exists and, if the clean month is at hand, the
    marker names the same clean file and row count (so a re-cleaned month is reloaded)."""
    if marker is None:
        return False
    if quality is None:
        return True
    return marker["rows"] == quality["rows_out"] and marker["clean_sha256"] == clean_sha256(quality)


def clean_sha256(quality: dict[str, Any]) -> str:
    return ",".join(f["sha256"] for f in quality["files"])
