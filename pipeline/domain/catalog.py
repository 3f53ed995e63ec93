"""The TLC catalog: colours, canonical schemas, column aliases, value maps, eras and URLs.

Everything here is data. The normaliser in ``transform.py`` only reads these tables, so
supporting a new TLC header spelling means adding one alias here, not a new branch.

``python -m tools.schema_doc`` prints ``docs/schema.md`` from these tables (a test keeps
them in step).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.domain.errors import BadParameter

COLORS: tuple[str, ...] = ("yellow", "green", "fhv", "fhvhv")

# The first month the TLC published for each colour. Asking for an earlier month is a
# caller error, not an "unpublished" month, so it fails before any download.
FIRST_MONTH: dict[str, tuple[int, int]] = {
    "yellow": (2009, 1),
    "green": (2013, 8),
    "fhv": (2015, 1),
    "fhvhv": (2019, 2),
}

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

TS = pa.timestamp("us")
I32 = pa.int32()
I64 = pa.int64()
F64 = pa.float64()
STR = pa.string()


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
# Eras: the headers the TLC actually published, oldest first. The normaliser does not need
# them (aliases suffice); they document the drift (docs/schema.md) and the tests check every
# real file in shared/data/tlc/eras against them, so a header we have not seen is noticed.
@dataclass(frozen=True)
class Era:
    color: str
    first: str  # "YYYY-MM", inclusive
    last: str  # "YYYY-MM", inclusive, or "" for "still current"
    header: tuple[str, ...]
    note: str = ""
    formats: tuple[str, ...] = field(default=("csv",))


def _h(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


ERAS: tuple[Era, ...] = (
    Era(
        "yellow",
        "2009-01",
        "2009-12",
        _h(
            "vendor_name,Trip_Pickup_DateTime,Trip_Dropoff_DateTime,Passenger_Count,Trip_Distance,"
            "Start_Lon,Start_Lat,Rate_Code,store_and_forward,End_Lon,End_Lat,Payment_Type,Fare_Amt,"
            "surcharge,mta_tax,Tip_Amt,Tolls_Amt,Total_Amt"
        ),
        "vendor and payment as words",
        ("csv", "parquet"),
    ),
    Era(
        "yellow",
        "2010-01",
        "2014-12",
        _h(
            "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,"
            "pickup_longitude,pickup_latitude,rate_code,store_and_fwd_flag,dropoff_longitude,"
            "dropoff_latitude,payment_type,fare_amount,surcharge,mta_tax,tip_amount,tolls_amount,"
            "total_amount"
        ),
        "2014 headers have a space after each comma; payment as 3-letter words",
    ),
    Era(
        "yellow",
        "2015-01",
        "2015-06",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "pickup_longitude,pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,"
            "dropoff_latitude,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
            "improvement_surcharge,total_amount"
        ),
    ),
    Era(
        "yellow",
        "2015-07",
        "2016-06",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "pickup_longitude,pickup_latitude,RatecodeID,store_and_fwd_flag,dropoff_longitude,"
            "dropoff_latitude,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
            "improvement_surcharge,total_amount"
        ),
    ),
    Era(
        "yellow",
        "2016-07",
        "2018-12",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
            "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount"
        ),
        "late-2016 rows carry 2 trailing empty fields",
    ),
    Era(
        "yellow",
        "2019-01",
        "2020-12",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
            "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,"
            "congestion_surcharge"
        ),
    ),
    Era(
        "yellow",
        "2021-01",
        "2022-12",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
            "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,"
            "congestion_surcharge,airport_fee"
        ),
        "course csv.gz and CDN parquet; types double for ids until 2023",
        ("csv", "parquet"),
    ),
    Era(
        "yellow",
        "2023-01",
        "2024-12",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
            "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,"
            "congestion_surcharge,Airport_fee"
        ),
        "2023 type change: int32/int64 ids, large_string",
        ("parquet",),
    ),
    Era(
        "yellow",
        "2025-01",
        "",
        _h(
            "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
            "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
            "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,"
            "congestion_surcharge,Airport_fee,cbd_congestion_fee"
        ),
        "",
        ("parquet",),
    ),
    Era(
        "green",
        "2013-08",
        "2014-12",
        _h(
            "VendorID,lpep_pickup_datetime,Lpep_dropoff_datetime,Store_and_fwd_flag,RateCodeID,"
            "Pickup_longitude,Pickup_latitude,Dropoff_longitude,Dropoff_latitude,Passenger_count,"
            "Trip_distance,Fare_amount,Extra,MTA_tax,Tip_amount,Tolls_amount,Ehail_fee,"
            "Total_amount,Payment_type,Trip_type "
        ),
        "'Trip_type ' has a trailing space; rows carry 2 trailing empty fields",
    ),
    Era(
        "green",
        "2015-01",
        "2016-06",
        _h(
            "VendorID,lpep_pickup_datetime,Lpep_dropoff_datetime,Store_and_fwd_flag,RateCodeID,"
            "Pickup_longitude,Pickup_latitude,Dropoff_longitude,Dropoff_latitude,Passenger_count,"
            "Trip_distance,Fare_amount,Extra,MTA_tax,Tip_amount,Tolls_amount,Ehail_fee,"
            "improvement_surcharge,Total_amount,Payment_type,Trip_type "
        ),
        "rows carry 2 trailing empty fields",
    ),
    Era(
        "green",
        "2016-07",
        "2018-12",
        _h(
            "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,"
            "PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,"
            "tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,"
            "trip_type"
        ),
        "2016 rows carry 2 trailing empty fields",
    ),
    Era(
        "green",
        "2019-01",
        "2024-12",
        _h(
            "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,"
            "PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,"
            "tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,"
            "trip_type,congestion_surcharge"
        ),
        "2023 type change in parquet: ehail_fee null -> double, ids int32",
        ("csv", "parquet"),
    ),
    Era(
        "green",
        "2025-01",
        "",
        _h(
            "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,"
            "PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,"
            "tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,"
            "trip_type,congestion_surcharge,cbd_congestion_fee"
        ),
        "",
        ("parquet",),
    ),
    Era(
        "fhv",
        "2015-01",
        "2016-12",
        _h("Dispatching_base_num,Pickup_date,locationID"),
        "pickup only, one location",
    ),
    Era(
        "fhv",
        "2017-01",
        "2017-06",
        _h("Dispatching_base_num,Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID"),
    ),
    Era(
        "fhv",
        "2017-07",
        "2017-12",
        _h(
            "Dispatching_base_num,Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID,"
            "SR_Flag"
        ),
        "quoted fields",
    ),
    Era(
        "fhv",
        "2018-01",
        "2018-12",
        _h(
            "Pickup_DateTime,DropOff_datetime,PUlocationID,DOlocationID,SR_Flag,"
            "Dispatching_base_number,Dispatching_base_num"
        ),
        "two base-number columns, coalesced",
    ),
    Era(
        "fhv",
        "2019-01",
        "2020-12",
        _h(
            "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,"
            "SR_Flag"
        ),
    ),
    Era(
        "fhv",
        "2021-01",
        "",
        _h(
            "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,"
            "SR_Flag,Affiliated_base_number"
        ),
        "",
        ("parquet",),
    ),
    Era(
        "fhvhv",
        "2019-02",
        "2020-12",
        _h(
            "hvfhs_license_num,dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,"
            "DOLocationID,SR_Flag"
        ),
        "the original CSV release",
    ),
    Era(
        "fhvhv",
        "2021-06",
        "2021-06",
        _h(
            "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,"
            "SR_Flag,Affiliated_base_number"
        ),
        "a re-release seen under the fhvhv name",
    ),
    Era(
        "fhvhv",
        "2019-02",
        "",
        _h(
            "hvfhs_license_num,dispatching_base_num,originating_base_num,request_datetime,"
            "on_scene_datetime,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,"
            "trip_miles,trip_time,base_passenger_fare,tolls,bcf,sales_tax,congestion_surcharge,"
            "airport_fee,tips,driver_pay,shared_request_flag,shared_match_flag,access_a_ride_flag,"
            "wav_request_flag,wav_match_flag"
        ),
        "CDN parquet; 2025 adds cbd_congestion_fee",
        ("parquet",),
    ),
)


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


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a month, as naive local timestamps like the TLC's own."""
    start = dt.datetime(year, month, 1)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1)
    return start, end


def source_url(template: str, color: str, year: int, month: int) -> str:
    return template.format(color=color, year=year, month=month)


def raw_filename(color: str, year: int, month: int, fmt: str) -> str:
    if fmt not in SOURCE_FORMATS:
        raise ValueError(f"unknown source format {fmt!r}: expected one of {SOURCE_FORMATS}")
    return f"{color}_tripdata_{year:04d}-{month:02d}.{fmt}"


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
