"""What no emulator can show (partition decorators, pruning, real type inference), checked on
the job and table configuration we would send to real BigQuery: a client with anonymous
credentials, no emulator and no network. The emulator tests are in
tests/integration/sinks/test_bigquery.py; the limits are listed in docs/gcp.md."""

from __future__ import annotations

import datetime as dt

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.sinks.base import LoadRecord
from pipeline.sinks.bigquery.warehouse import BigQueryWarehouse, bq_schema


def test_job_and_table_configuration_for_real_bigquery():
    client = bigquery.Client(
        project="some-project",
        credentials=AnonymousCredentials(),
    )
    wh = BigQueryWarehouse(client, "tlc", "EU")
    load = wh.load_job_config("yellow").to_api_repr()["load"]
    assert load["sourceFormat"] == "PARQUET"
    assert load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load.get("autodetect") is False
    fields = {f["name"]: f["type"] for f in load["schema"]["fields"]}
    assert fields["pickup_datetime"] == "DATETIME"  # naive local times, not instants
    assert fields["pu_location_id"] in ("INTEGER", "INT64")
    table = wh.trips_table_spec("yellow").to_api_repr()
    assert table["timePartitioning"] == {"type": "MONTH", "field": "pickup_datetime"}
    assert table["clustering"] == {"fields": ["pu_location_id"]}
    # The month is replaced with DML on a pickup range, never with a partition decorator
    # (table$YYYYMM), whose semantics no emulator reproduces; every value is a parameter.
    key = MonthKey("yellow", 2021, 1)
    sql = wh.swap_sql(key, "_stage_yellow_202101")
    assert "$" not in sql
    assert sql.startswith("BEGIN TRANSACTION;")
    assert sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert "`pickup_datetime` >= ? AND `pickup_datetime` < ?" in sql
    assert "'" not in sql  # no literal: values go as query parameters
    params = wh.swap_params(key, _record())
    assert params[:2] == [dt.datetime(2021, 1, 1), dt.datetime(2021, 2, 1)]
    assert sql.count("?") == len(params)
    zone_fields = [(f.name, f.type) for f in catalog.ZONES_SCHEMA]
    assert bq_schema(zone_fields)[0].field_type == "INT64"


def test_hostile_names_are_refused():
    client = bigquery.Client(
        project="some-project",
        credentials=AnonymousCredentials(),
    )
    with pytest.raises(PipelineError, match="dataset"):
        BigQueryWarehouse(client, "tlc`; DROP TABLE x; --")
    wh = BigQueryWarehouse(client, "tlc")
    with pytest.raises(BadParameter, match="colour"):
        wh.swap_sql(MonthKey("green`; DROP", 2021, 1), "_stage")
    with pytest.raises(PipelineError, match="table name"):
        wh.sql_name("x`; DROP TABLE y; --")


def _record() -> LoadRecord:
    return LoadRecord("month", "yellow_trips", "yellow", 2021, 1, 2, 1, {"r": 1}, "ab", "cd",
                      "0.1.0", dt.datetime(2026, 1, 1), 1.5, "tlc_y")  # fmt: skip
