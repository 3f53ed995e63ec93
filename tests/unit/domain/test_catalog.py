"""The catalog is data; these tests keep it consistent (its documentation is checked in
tests/integration/test_schema_doc.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import catalog, eras
from pipeline.domain.months import MonthKey


@pytest.mark.parametrize("color", catalog.COLORS)
def test_aliases_are_unambiguous(color: str):
    seen: dict[str, str] = {}
    for col in catalog.SCHEMAS[color]:
        for name in col.source_names:
            key = catalog.normalise_name(name)
            assert seen.setdefault(key, col.name) == col.name, (color, key)


@pytest.mark.parametrize("color", catalog.COLORS)
def test_every_era_header_maps_completely(color: str):
    index = catalog.alias_index(color)
    for era in (e for e in eras.ERAS if e.color == color):
        unknown = [h for h in era.header if catalog.normalise_name(h) not in index]
        assert unknown == [], (era.first, unknown)
        assert "pickup_datetime" in {index[catalog.normalise_name(h)].name for h in era.header}


def test_canonical_names_are_snake_case_and_types_are_canonical():
    allowed = {catalog.TS, catalog.I32, catalog.I64, catalog.F64, catalog.STR}
    for color in catalog.COLORS:
        for col in catalog.SCHEMAS[color]:
            assert col.name == col.name.lower().strip(), col.name
            assert col.type in allowed, col
            assert col.values is None or col.values in catalog.VALUE_MAPS


def test_required_columns_per_colour():
    taxi = [
        "vendor_id",
        "pickup_datetime",
        "dropoff_datetime",
        "passenger_count",
        "trip_distance",
        "ratecode_id",
        "store_and_fwd_flag",
        "pu_location_id",
        "do_location_id",
        "payment_type",
        "fare_amount",
        "extra",
        "mta_tax",
        "tip_amount",
        "tolls_amount",
        "improvement_surcharge",
        "total_amount",
        "congestion_surcharge",
        "airport_fee",
        "cbd_congestion_fee",
    ]
    lonlat = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
    assert catalog.arrow_schema("yellow").names == taxi + lonlat
    assert catalog.arrow_schema("green").names == [*taxi, "ehail_fee", "trip_type", *lonlat]
    assert "hvfhs_license_num" in catalog.arrow_schema("fhvhv").names


@given(st.sampled_from(catalog.COLORS), st.integers(1990, 2100), st.integers(-3, 15))
def test_check_month_accepts_exactly_published_range(color: str, year: int, month: int):
    ok = 1 <= month <= 12 and (year, month) >= catalog.FIRST_MONTH[color]
    if ok:
        catalog.check_month(color, year, month)
    else:
        with pytest.raises(ValueError, match=color if 1 <= month <= 12 else "month must be"):
            catalog.check_month(color, year, month)


def test_url_templates():
    yellow, green = MonthKey("yellow", 2021, 1), MonthKey("green", 2020, 10)
    assert catalog.source_url(catalog.DEFAULT_PARQUET_URL, yellow) == (
        "https://d37ci6vzurychx.cloudfront.net/trip-data/yellow_tripdata_2021-01.parquet"
    )
    assert catalog.source_url(catalog.DEFAULT_CSV_URL, green).endswith(
        "/download/green/green_tripdata_2020-10.csv.gz"
    )
    fhv = MonthKey("fhv", 2019, 2)
    assert catalog.raw_filename(fhv, "csv.gz") == "fhv_tripdata_2019-02.csv.gz"
    with pytest.raises(ValueError, match="unknown source format"):
        catalog.raw_filename(fhv, "csv")


# --- the TLC's names, shown by the views over the canonical tables --------------------------
@pytest.mark.parametrize("color", catalog.COLORS)
def test_tlc_names_are_the_current_files_own_headers(color: str):
    """The view of a colour shows each column under its name in the TLC's current files (the
    last era), letter case included: the course's SQL quotes "PULocationID" in PostgreSQL.
    tests/integration/sinks/test_course_views.py checks the spelling against the real files."""
    (current,) = [e for e in eras.ERAS if e.color == color and e.last == ""]
    index = catalog.alias_index(color)
    for header in current.header:
        column = index[catalog.normalise_name(header)].name
        assert catalog.tlc_name(color, column) == header.strip(), (color, header)


@pytest.mark.parametrize("color", catalog.COLORS)
def test_tlc_names_are_aliases_of_their_columns_and_distinct_in_any_case(color: str):
    columns = {c.name: c for c in catalog.SCHEMAS[color]}
    assert set(catalog.TLC_NAMES[color]) <= set(columns), "a TLC name for no column"
    for column, name in catalog.TLC_NAMES[color].items():
        sources = {catalog.normalise_name(n) for n in columns[column].source_names}
        assert catalog.normalise_name(name) in sources, (color, column, name)
    view = catalog.tlc_view(color)
    assert [c for c, _ in view.columns] == catalog.arrow_schema(color).names
    names = [n.lower() for _, n in view.columns]  # DuckDB and BigQuery ignore case
    assert len(set(names)) == len(names)
    assert (view.name, view.table) == (f"{color}_tripdata", f"{color}_trips")


def test_zone_lookup_view_has_the_csv_header():
    view = catalog.zones_tlc_view()
    assert (view.name, view.table) == ("taxi_zone_lookup", "taxi_zones")
    assert view.columns == (
        ("location_id", "LocationID"),
        ("borough", "Borough"),
        ("zone", "Zone"),
        ("service_zone", "service_zone"),
    )
    assert [v.name for v in catalog.tlc_views()] == [
        "yellow_tripdata", "green_tripdata", "fhv_tripdata", "fhvhv_tripdata", "taxi_zone_lookup",
    ]  # fmt: skip
    assert set(catalog.ZONES_DOCS) == set(catalog.ZONES_SCHEMA.names)
