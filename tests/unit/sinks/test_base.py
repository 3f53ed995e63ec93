"""The load ledger's row, the same in every sink: written, read back, and matched against the
clean month at hand."""

from __future__ import annotations

import datetime as dt
import json

from pipeline.domain.months import MonthKey
from pipeline.sinks.base import LEDGER_COLUMNS, LoadRecord
from tests.support.data import sample_report


def test_a_ledger_row_reads_back_as_the_record_it_was_written_from():
    report = sample_report()
    record = LoadRecord.for_month(report, "green_trips", 76_368, 1.23456, "job-1")
    assert (record.kind, record.key, record.seconds) == ("month", MonthKey("green", 2021, 1), 1.235)
    assert record.loaded_at.tzinfo is None  # naive UTC in every ledger
    row = dict(zip(LEDGER_COLUMNS, record.values(), strict=True))
    assert json.loads(row["rows_dropped"]) == report["rows_dropped"]  # JSON text in the row
    assert (row["source_sha256"], row["clean_sha256"]) == ("ab" * 32, "cd" * 32)
    assert LoadRecord.from_row(row) == record

    # what a driver may hand back instead: an aware timestamp, NULLs, an older ledger's row
    aware = {**row, "loaded_at": record.loaded_at.replace(tzinfo=dt.UTC), "rows_dropped": None}
    del aware["load_id"]
    back = LoadRecord.from_row(aware)
    assert back.loaded_at == record.loaded_at
    assert (back.rows_dropped, back.load_id) == ({}, "")

    zones = LoadRecord.for_zones("taxi_zones", 265, "ef" * 32, 0.5)
    assert zones.key is None
    assert LoadRecord.from_row(dict(zip(LEDGER_COLUMNS, zones.values(), strict=True))) == zones


def test_a_record_matches_only_the_clean_month_it_was_loaded_from():
    report = sample_report()
    record = LoadRecord.for_month(report, "green_trips", report["rows_out"], 1.0)
    assert record.matches(report)
    assert record.matches(None)  # the lake no longer has the month: the load stands
    recleaned = {**report, "files": [{**report["files"][0], "sha256": "00" * 32}]}
    assert not record.matches(recleaned)
    assert not record.matches({**report, "rows_out": report["rows_out"] - 1})
