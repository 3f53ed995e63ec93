"""The headers the TLC actually published, oldest first, one entry per schema era.

The normaliser does not need them (the catalog's aliases suffice). They document the drift
(``python -m tools.schema_doc`` renders docs/schema.md from them) and the tests check every
real file in shared/data/tlc/eras against them, so a header nobody has seen is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
