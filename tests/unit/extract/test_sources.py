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


# The handler's own exception is swallowed by pyarrow and printed as "Exception ignored in":
# a traceback on stderr, which pytest reports as this warning.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_stray_quote_after_the_sniffed_lines_fails_the_file_with_its_line(tmp_path: Path):
    """Past the first lines, pyarrow hands the broken row to the invalid-row handler, whose
    own CSV parse of it fails the same way: the row is bad, the file fails with one error and
    no traceback."""
    path = tmp_path / "yellow_tripdata_2015-01.csv"
    stray = '2,"2015-01-01 00:20:00,2015-01-01 00:30:00,1,2.0\n'
    path.write_text(HEADER + ROW * 300 + stray + ROW * 5000)
    source = open_source(path, "csv")
    with pytest.raises(BadSourceFile, match=r"^yellow_tripdata_2015-01\.csv: "):
        for _ in source.batches(100_000):
            pass
