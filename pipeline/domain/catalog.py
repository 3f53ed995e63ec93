"""The TLC catalog: colours, canonical schemas, column aliases, value maps, eras and URLs.

Everything here is data. The normaliser in ``transform.py`` only reads these tables, so
supporting a new TLC header spelling means adding one alias here, not a new branch.

``python -m tools.schema_doc`` prints ``docs/schema.md`` from these tables (a test keeps
them in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.domain.errors import BadParameter

if TYPE_CHECKING:
    from pipeline.domain.months import MonthKey

COLORS: tuple[str, ...] = ("yellow", "green", "fhv", "fhvhv")

# The first month the TLC published for each colour. Asking for an earlier month is a
# caller error, not an "unpublished" month, so it fails before any download.
FIRST_MONTH: dict[str, tuple[int, int]] = {
    "yellow": (2009, 1),
    "green": (2013, 8),
    "fhv": (2015, 1),
    "fhvhv": (2019, 2),
}

# Millions of rows in a typical month of each colour (FHVHV 2019-: ~20; yellow 2009-19: 7-15;
# FHV since 2019: 1-2; green: under 1). Luigi runs the tasks of bigger months first
# (``MonthTask.priority``), so a backfill does not end with one FHVHV month running alone on
# one core while the other cores have nothing left (benchmarks/README.md, "Backfill").
TYPICAL_MONTH_MILLION_ROWS: dict[str, int] = {"fhvhv": 20, "yellow": 8, "fhv": 2, "green": 1}

DEFAULT_PARQUET_URL = (
    "https://d37ci6vzurychx.cloudfront.net/trip-data/"
    "{color}_tripdata_{year:04d}-{month:02d}.parquet"
)
DEFAULT_CSV_URL = (
    "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/"
    "{color}/{color}_tripdata_{year:04d}-{month:02d}.csv.gz"
)
DEFAULT_ZONES_URL = "https://d37ci6vzurychx.cloudfront.net/misc/taxi_zone_lookup.csv"

SOURCE_FORMATS: tuple[str, ...] = ("parquet", "csv.gz")

TS: pa.DataType = pa.timestamp("us")
I32: pa.DataType = pa.int32()
I64: pa.DataType = pa.int64()
F64: pa.DataType = pa.float64()
STR: pa.DataType = pa.string()


@dataclass(frozen=True)
class Column:
    """One canonical column.

    ``aliases`` are source header names, compared after ``strip().lower()`` so that
    ``RateCodeID``/``RatecodeID``, ``Airport_fee``/``airport_fee`` and the 2014 headers with a
    leading space all match one entry. When a file carries several aliases of one column
    (FHV 2018 has both ``Dispatching_base_number`` and ``Dispatching_base_num``), the values
    are coalesced in alias order.
    """

    name: str
    type: pa.DataType
    aliases: tuple[str, ...] = ()
    values: str | None = None  # name of a value map in VALUE_MAPS, applied to string sources
    doc: str = ""

    @property
    def source_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# Value maps turn the words of the 2009-2014 files into the codes used from 2015 on.
# Keys are compared after strip().lower(). A string that is neither a key nor a number
# fails the cast (rule 3): it is never turned into NULL.
VALUE_MAPS: dict[str, dict[str, str]] = {
    # 2009-2014 vendor names. CMT and VTS became codes 1 and 2; DDS (Digital Dispatch
    # Systems, gone by 2015) never had a code, so it gets 3, unused by the TLC since.
    "vendor": {"cmt": "1", "vts": "2", "dds": "3"},
    # 2009 spells payment types out; 2010-2014 abbreviate them to three letters.
    "payment": {
        "crd": "1",
        "cre": "1",
        "credit": "1",
        "csh": "2",
        "cas": "2",
        "cash": "2",
        "noc": "3",
        "no": "3",
        "no charge": "3",
        "dis": "4",
        "dispute": "4",
        "unk": "5",
        "na": "5",
        "voided": "6",
    },
    # Flags are strings. The 2010 files and the FHV SR_Flag use 0/1; later files use N/Y.
    "flag": {"0": "N", "1": "Y", "n": "N", "y": "Y"},
}

_PICKUP = Column(
    "pickup_datetime",
    TS,
    ("tpep_pickup_datetime", "lpep_pickup_datetime", "trip_pickup_datetime", "pickup_date"),
    doc="Meter engaged / passenger picked up (local NYC time).",
)
_DROPOFF = Column(
    "dropoff_datetime",
    TS,
    ("tpep_dropoff_datetime", "lpep_dropoff_datetime", "trip_dropoff_datetime"),
    doc="Meter disengaged / passenger dropped off.",
)
_PU = Column("pu_location_id", I32, ("pulocationid", "locationid"), doc="TLC taxi zone of pickup.")
_DO = Column("do_location_id", I32, ("dolocationid",), doc="TLC taxi zone of drop-off.")
_AIRPORT = Column("airport_fee", F64, doc="Airport pickup fee (from 2021).")
_CBD = Column("cbd_congestion_fee", F64, doc="Manhattan CBD congestion fee (from 2025).")
_CONGESTION = Column("congestion_surcharge", F64, doc="NYS congestion surcharge (from 2019).")
_LONLAT = (
    Column("pickup_longitude", F64, ("start_lon",), doc="Pre-2016-07 only."),
    Column("pickup_latitude", F64, ("start_lat",), doc="Pre-2016-07 only."),
    Column("dropoff_longitude", F64, ("end_lon",), doc="Pre-2016-07 only."),
    Column("dropoff_latitude", F64, ("end_lat",), doc="Pre-2016-07 only."),
)

_TAXI_BASE: tuple[Column, ...] = (
    Column("vendor_id", I32, ("vendorid", "vendor_name"), "vendor", "Technology provider."),
    _PICKUP,
    _DROPOFF,
    Column("passenger_count", I32, (), doc="Driver-entered passenger count."),
    Column("trip_distance", F64, (), doc="Miles on the taximeter."),
    Column("ratecode_id", I32, ("ratecodeid", "rate_code"), doc="Final rate code."),
    Column(
        "store_and_fwd_flag", STR, ("store_and_forward",), "flag", "Y = held in vehicle memory."
    ),
    _PU,
    _DO,
    Column("payment_type", I32, (), "payment", "1 credit, 2 cash, 3 no charge, 4 dispute..."),
    Column("fare_amount", F64, ("fare_amt",), doc="Time-and-distance fare."),
    Column("extra", F64, ("surcharge",), doc="Extras and surcharges (2009-14: surcharge)."),
    Column("mta_tax", F64, (), doc="MTA tax."),
    Column("tip_amount", F64, ("tip_amt",), doc="Card tips (cash tips are not recorded)."),
    Column("tolls_amount", F64, ("tolls_amt",), doc="Tolls paid."),
    Column("improvement_surcharge", F64, (), doc="Improvement surcharge (from 2015)."),
    Column("total_amount", F64, ("total_amt",), doc="Total charged, cash tips excluded."),
    _CONGESTION,
    _AIRPORT,
    _CBD,
)

_FHV_BASE: tuple[Column, ...] = (
    Column(
        "dispatching_base_num", STR, ("dispatching_base_number",), doc="Dispatching base licence."
    ),
    _PICKUP,
    _DROPOFF,
    _PU,
    _DO,
    Column("sr_flag", STR, (), "flag", "Shared ride (Y) or not."),
    Column("affiliated_base_number", STR, (), doc="Base the vehicle is affiliated with."),
)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "yellow": (*_TAXI_BASE, *_LONLAT),
    "green": (
        *_TAXI_BASE,
        Column("ehail_fee", F64, (), doc="E-hail fee (green only, mostly empty)."),
        Column("trip_type", I32, (), doc="1 street-hail, 2 dispatch (green only)."),
        *_LONLAT,
    ),
    "fhv": _FHV_BASE,
    "fhvhv": (
        Column("hvfhs_license_num", STR, (), doc="HVFHS licence (Uber, Lyft, ...)."),
        _FHV_BASE[0],
        Column("originating_base_num", STR, (), doc="Base that received the request."),
        Column("request_datetime", TS, (), doc="Passenger requested the ride."),
        Column("on_scene_datetime", TS, (), doc="Driver arrived."),
        _PICKUP,
        _DROPOFF,
        _PU,
        _DO,
        Column("trip_miles", F64, (), doc="Miles driven."),
        Column("trip_time", I64, (), doc="Seconds."),
        Column("base_passenger_fare", F64, (), doc="Base fare before tolls, taxes, tips."),
        Column("tolls", F64, ()),
        Column("bcf", F64, (), doc="Black Car Fund."),
        Column("sales_tax", F64, ()),
        _CONGESTION,
        _AIRPORT,
        Column("tips", F64, ()),
        Column("driver_pay", F64, ()),
        Column("shared_request_flag", STR, (), "flag"),
        Column("shared_match_flag", STR, (), "flag"),
        Column("access_a_ride_flag", STR, (), "flag"),
        Column("wav_request_flag", STR, (), "flag"),
        Column("wav_match_flag", STR, (), "flag"),
        _CBD,
        _FHV_BASE[5],  # sr_flag: the 2019-2020 CSV releases
        _FHV_BASE[6],  # affiliated_base_number: the 2021 re-releases
    ),
}

# The TLC's own spelling of each canonical column, as its current parquet files write it (the
# last era of each colour in eras.py; the course's yellow and green csv.gz agree, except yellow's
# ``airport_fee`` before 2023), where it differs from the canonical name. SQL written against
# the TLC's files, as the DataTalksClub course writes it, runs on the views that show each
# ``{color}_trips`` under these names (``tlc_view``). A column the current files lack (the
# lon/lat of 2009-2016, green's airport_fee, fhvhv's sr_flag) keeps its canonical name.
_TAXI_TLC = {
    "vendor_id": "VendorID",
    "ratecode_id": "RatecodeID",
    "pu_location_id": "PULocationID",
    "do_location_id": "DOLocationID",
}
TLC_NAMES: dict[str, dict[str, str]] = {
    "yellow": {
        **_TAXI_TLC,
        "pickup_datetime": "tpep_pickup_datetime",
        "dropoff_datetime": "tpep_dropoff_datetime",
        "airport_fee": "Airport_fee",
    },
    "green": {
        **_TAXI_TLC,
        "pickup_datetime": "lpep_pickup_datetime",
        "dropoff_datetime": "lpep_dropoff_datetime",
    },
    "fhv": {
        "dropoff_datetime": "dropOff_datetime",
        "pu_location_id": "PUlocationID",
        "do_location_id": "DOlocationID",
        "sr_flag": "SR_Flag",
        "affiliated_base_number": "Affiliated_base_number",
    },
    "fhvhv": {"pu_location_id": "PULocationID", "do_location_id": "DOLocationID"},
}

# Rules that drop rows. Each applies to the colours whose schema has the column it reads.
PASSENGER_COLUMN = "passenger_count"
PICKUP_COLUMN = "pickup_datetime"


def arrow_schema(color: str) -> pa.Schema:
    """The canonical Arrow schema of a colour: every sink derives its DDL from this."""
    return pa.schema([pa.field(c.name, c.type, nullable=True) for c in SCHEMAS[color]])


def alias_index(color: str) -> dict[str, Column]:
    """Map each normalised source name (strip().lower()) to its canonical column."""
    index: dict[str, Column] = {}
    for col in SCHEMAS[color]:
        for name in col.source_names:
            index[normalise_name(name)] = col
    return index


def normalise_name(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


# ---------------------------------------------------------------------------------------
# Months and URLs
def check_month(color: str, year: int, month: int) -> None:
    """Reject a colour/month the TLC never published, before anything is downloaded."""
    if color not in COLORS:
        raise BadParameter(f"unknown colour {color!r}: expected one of {', '.join(COLORS)}")
    if not 1 <= month <= 12:
        raise BadParameter(f"month must be 1..12, got {month}")
    if not 1900 <= year <= 9999:
        raise BadParameter(f"year must be four digits, got {year}")
    if (year, month) < FIRST_MONTH[color]:
        fy, fm = FIRST_MONTH[color]
        raise BadParameter(
            f"{color} trips start in {fy:04d}-{fm:02d}; {year:04d}-{month:02d} never existed"
        )


def trips_table(color: str) -> str:
    """The colour's table in every warehouse: ``{color}_trips``."""
    if color not in COLORS:
        raise BadParameter(f"unknown colour {color!r}: expected one of {', '.join(COLORS)}")
    return f"{color}_trips"


def source_url(template: str, key: MonthKey) -> str:
    return template.format(color=key.color, year=key.year, month=key.month)


def raw_filename(key: MonthKey, fmt: str) -> str:
    if fmt not in SOURCE_FORMATS:
        raise ValueError(f"unknown source format {fmt!r}: expected one of {SOURCE_FORMATS}")
    return f"{key.color}_tripdata_{key.year:04d}-{key.month:02d}.{fmt}"


# ---------------------------------------------------------------------------------------
# Zone lookup
ZONES_SCHEMA = pa.schema(
    [
        pa.field("location_id", I32),
        pa.field("borough", STR),
        pa.field("zone", STR),
        pa.field("service_zone", STR),
    ]
)
ZONES_COLUMNS: dict[str, str] = {
    "locationid": "location_id",
    "borough": "borough",
    "zone": "zone",
    "service_zone": "service_zone",
}
ZONES_TABLE = "taxi_zones"
# The lookup CSV's own header, for the view that shows taxi_zones under it.
ZONES_TLC_NAMES: dict[str, str] = {
    "location_id": "LocationID",
    "borough": "Borough",
    "zone": "Zone",
    "service_zone": "service_zone",
}
ZONES_DOCS: dict[str, str] = {
    "location_id": "TLC taxi zone id (1-265), the trips' pu_location_id / do_location_id.",
    "borough": "Borough (EWR for Newark Airport; Unknown for 264 and 265).",
    "zone": "Zone name.",
    "service_zone": "Yellow Zone, Boro Zone, Airports, EWR (N/A for 264 and 265).",
}


# ---------------------------------------------------------------------------------------
# Views with the TLC's names
@dataclass(frozen=True)
class TlcView:
    """A canonical table shown under the TLC's names: ``{color}_tripdata`` (the TLC's file
    name) over ``{color}_trips``, ``taxi_zone_lookup`` over ``taxi_zones``. Each sink renders it
    in its own SQL dialect and quoting."""

    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # (canonical column, TLC name), in the table's order


def tlc_name(color: str, column: str) -> str:
    """The TLC's spelling of a canonical column of ``color``."""
    return TLC_NAMES[color].get(column, column)


def tlc_view(color: str) -> TlcView:
    table = trips_table(color)
    names = tuple((c.name, tlc_name(color, c.name)) for c in SCHEMAS[color])
    return TlcView(f"{color}_tripdata", table, names)


def zones_tlc_view() -> TlcView:
    names = tuple((n, ZONES_TLC_NAMES[n]) for n in ZONES_SCHEMA.names)
    return TlcView("taxi_zone_lookup", ZONES_TABLE, names)


def tlc_views() -> tuple[TlcView, ...]:
    """Every view with the TLC's names: one per colour, then the zones."""
    return (*(tlc_view(c) for c in COLORS), zones_tlc_view())
