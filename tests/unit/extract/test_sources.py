"""Hand-written bad CSV files: one BadSourceFile naming the file and the cause, never a
traceback. (The real broken downloads are in tests/integration/extract/.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.errors import BadSourceFile, SchemaError
from pipeline.extract.sources import open_source
from pipeline.extract.zones import read_zones

HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance\n"
ROW = "1,2015-01-01 00:11:33,2015-01-01 00:16:48,1,1.00\n"


def test_a_stray_quote_in_the_first_lines_is_one_clear_error(tmp_path: Path):
    """Python's csv reader runs the quoted field on until its field size limit (128 KiB)."""
    path = tmp_path / "yellow_tripdata_2015-01.csv"
    stray = '2,"2015-01-01 00:20:00,2015-01-01 00:30:00,1,2.0\n'
    path.write_text(HEADER + ROW + stray + ROW * 5000)
    source = open_source(path, "csv")
    with pytest.raises(BadSourceFile, match=r"^yellow_tripdata_2015-01\.csv: malformed CSV near"):
        next(source.batches(1000))


def test_a_zone_lookup_with_a_bad_location_id_is_one_clear_error(tmp_path: Path):
    path = tmp_path / "taxi_zone_lookup.csv"
    path.write_text('"LocationID","Borough","Zone","service_zone"\n1,"EWR","Newark","EWR"\nx,,,\n')
    with pytest.raises(BadSourceFile, match=r"^taxi_zone_lookup\.csv: not a readable zone lookup"):
        read_zones(path)


def test_an_html_page_for_a_zone_lookup_names_its_column(tmp_path: Path):
    path = tmp_path / "taxi_zone_lookup.csv"
    path.write_text("<!DOCTYPE html><html><body>503 Service Unavailable</body></html>\n")
    with pytest.raises(SchemaError, match=r"^taxi_zone_lookup\.csv: unknown zone lookup column"):
        read_zones(path)
