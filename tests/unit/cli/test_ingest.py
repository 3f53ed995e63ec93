"""The course's ingest command: arguments refused before any connection."""

from __future__ import annotations

import pytest

from pipeline.cli import ingest


def test_a_table_name_postgresql_would_cut_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    url = "http://127.0.0.1:9/trip-data/yellow_tripdata_2021-01.parquet"  # never fetched
    with pytest.raises(SystemExit) as e:
        ingest.main(["--table_name", "t" * 50, "--url", url])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--table_name: PostgreSQL table name 'tttt" in err
    assert "at most 48 bytes" in err
