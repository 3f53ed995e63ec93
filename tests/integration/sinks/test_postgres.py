"""The PostgreSQL sink and LoadPostgres against a real server (tests/support/pg.py): exact counts,
the atomic month swap, faults mid-COPY, identifiers, credentials, and the course's ingest CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.orchestration import loading
from pipeline.orchestration.tasks import LoadPostgres, LoadZones
from pipeline.sinks.base import LEDGER_COLUMNS, LoadRecord
from pipeline.sinks.postgres import PgConn, PostgresWarehouse
from tests.support.data import GREEN, expected_from_pandas
from tests.support.fixtures import PipelineEnv, pg_query, require_tlc_data
from tests.support.lakes import Cleaned, clean_into, clean_paths
from tests.support.tlc_server import RefusedPorts
from tools.synthetic import write_yellow_month

LUIGI = str(Path(sys.executable).parent / "luigi")


def month_count(pg: PostgresWarehouse, table: str, year: int, month: int) -> int:
    start, end = MonthKey("green", year, month).bounds()
    return pg_query(
        pg,
        f'SELECT count(*) FROM "{pg.schema}"."{table}"'
        " WHERE pickup_datetime >= %s AND pickup_datetime < %s",
        [start, end],
    )[0][0]


def tables(pg: PostgresWarehouse) -> list[str]:
    rows = pg_query(
        pg,
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
        [pg.schema],
    )
    return [r[0] for r in rows]


def partitions(pg: PostgresWarehouse, table: str) -> dict[str, int]:
    """partition name -> oid, for the trips table."""
    rows = pg_query(
        pg,
        "SELECT c.relname, c.oid::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s)",
        [f'"{pg.schema}"."{table}"'],
    )
    return dict(rows)


@pytest.fixture(scope="module")
def green_clean(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, Cleaned]:
    tlc = require_tlc_data()
    out = {}
    for (year, month), name in GREEN.items():
        d = tmp_path_factory.mktemp("green") / f"{year}-{month}"
        out[(year, month)] = clean_into(
            tlc / "months" / name, "parquet", MonthKey("green", year, month), d
        )
    return out


@pytest.fixture(scope="module")
def big_clean(tmp_path_factory: pytest.TempPathFactory) -> Cleaned:
    """A synthetic 1.2M-row yellow month, cleaned: its COPY lasts long enough to interrupt."""
    tmp = tmp_path_factory.mktemp("big")
    raw = write_yellow_month(tmp / "yellow_tripdata_2021-01.parquet", 1_200_000)
    return clean_into(raw, "parquet", MonthKey("yellow", 2021, 1), tmp / "lake")


# --- exact counts ---------------------------------------------------------------------------
@pytest.mark.parametrize(("year", "month"), list(GREEN))
def test_real_green_month_through_the_chain_with_exact_counts(
    year: int, month: int, pg_env: PipelineEnv, pg: PostgresWarehouse, tlc: Path
):
    src = tlc / "months" / GREEN[(year, month)]
    pg_env.server.publish_month("green", year, month, src, "parquet")
    assert pg_env.build(LoadPostgres(color="green", year=year, month=month))

    want = expected_from_pandas(src, year, month)["rows_out"]
    (part,) = clean_paths(pg_env.the_lake(), MonthKey("green", year, month))
    assert pq.read_metadata(part).num_rows == want
    assert month_count(pg, "green_trips", year, month) == want
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".green_trips')[0][0] == want
    assert list(partitions(pg, "green_trips")) == [f"green_trips_{year:04d}{month:02d}"]
    record = pg.loaded(MonthKey("green", year, month))
    assert record is not None
    assert record.rows_out == want
    assert record.source_sha256 == lake.sha256_file(src)
    # the load ledger, in the schema, with every sink's columns
    ledger = pg_query(
        pg, f'SELECT kind, table_name FROM "{pg.schema}"._pipeline_loads ORDER BY kind'
    )
    assert ledger == [("month", "green_trips"), ("zones", "taxi_zones")]
    columns = pg_query(
        pg,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = '_pipeline_loads' ORDER BY ordinal_position",
        [pg.schema],
    )
    assert tuple(c for (c,) in columns) == LEDGER_COLUMNS
    # taxi_zones came along through the same sink and joins
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".taxi_zones')[0][0] == 265
    joined = pg_query(
        pg,
        f'SELECT count(*) FROM "{pg.schema}".green_trips t'
        f' JOIN "{pg.schema}".taxi_zones z ON z.location_id = t.pu_location_id',
    )[0][0]
    assert joined == want
    # column types come from the canonical schema
    types = dict(
        pg_query(
            pg,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'green_trips'",
            [pg.schema],
        )
    )
    assert types["pickup_datetime"] == "timestamp without time zone"
    assert types["passenger_count"] == "integer"
    assert types["fare_amount"] == "double precision"
    assert types["store_and_fwd_flag"] == "text"
    # a second run does nothing: same partition, same marker
    before = partitions(pg, "green_trips"), pg.loaded(MonthKey("green", year, month))
    assert pg_env.build(LoadPostgres(color="green", year=year, month=month))
    assert (partitions(pg, "green_trips"), pg.loaded(MonthKey("green", year, month))) == before


def test_loading_the_same_month_twice_keeps_one_copy(pg: PostgresWarehouse, green_clean):
    d = green_clean[(2021, 1)]
    want = d.report["rows_out"]
    assert load_month(d, pg) == want
    assert load_month(d, pg) == want  # a forced reload
    assert month_count(pg, "green_trips", 2021, 1) == want
    # every distinct row of the clean file is there exactly as often as in the file
    with duckdb.connect() as con:
        (distinct_in_file,) = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT * FROM read_parquet(?))",
            d.paths,
        ).fetchone()
    (distinct_in_pg,) = pg_query(
        pg, f'SELECT count(*) FROM (SELECT DISTINCT * FROM "{pg.schema}".green_trips) d'
    )[0]
    assert distinct_in_pg == distinct_in_file
    assert tables(pg) == ["_pipeline_loads", "green_trips", "green_trips_202101"]


def test_reloading_month_a_leaves_month_b_untouched(pg: PostgresWarehouse, green_clean):
    a, b = green_clean[(2021, 1)], green_clean[(2023, 2)]
    load_month(a, pg)
    load_month(b, pg)
    b_oid = partitions(pg, "green_trips")["green_trips_202302"]
    b_rows = pg_query(
        pg,
        f'SELECT xmin::text, count(*) FROM "{pg.schema}".green_trips_202302 GROUP BY 1',
    )
    b_marker = pg.loaded(MonthKey("green", 2023, 2))
    a_oid = partitions(pg, "green_trips")["green_trips_202101"]

    load_month(a, pg)

    parts = partitions(pg, "green_trips")
    assert parts["green_trips_202302"] == b_oid  # the very same table
    assert parts["green_trips_202101"] != a_oid  # A was swapped for a new one
    assert (
        pg_query(
            pg,
            f'SELECT xmin::text, count(*) FROM "{pg.schema}".green_trips_202302 GROUP BY 1',
        )
        == b_rows
    )
    assert pg.loaded(MonthKey("green", 2023, 2)) == b_marker
    assert month_count(pg, "green_trips", 2021, 1) == a.report["rows_out"]
    assert month_count(pg, "green_trips", 2023, 2) == b.report["rows_out"]


def test_attach_adopts_the_index_the_stage_built(pg: PostgresWarehouse, green_clean):
    """The stage's BRIN index becomes the partition's part of the parent's index: ATTACH builds
    no second one under the swap's lock, and the index is complete (every range summarized)."""
    d = green_clean[(2021, 1)]
    load_month(d, pg)
    load_month(d, pg)  # a reload swaps in a new partition
    rows = pg_query(
        pg,
        "SELECT c.relname, i.indisvalid, p.relname FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " LEFT JOIN pg_inherits h ON h.inhrelid = i.indexrelid"
        " LEFT JOIN pg_class p ON p.oid = h.inhparent"
        " WHERE i.indrelid = to_regclass(%s)",
        [f'"{pg.schema}".green_trips_202101'],
    )
    assert rows == [
        ("green_trips_202101_pickup_datetime_idx", True, "green_trips_pickup_datetime_idx")
    ]
    (summarized,) = pg_query(
        pg,
        "SELECT brin_summarize_new_values(to_regclass(%s))",
        [f'"{pg.schema}".green_trips_202101_pickup_datetime_idx'],
    )[0]
    assert summarized == 0  # nothing was left for VACUUM to summarize


def test_a_failed_ddl_leaves_no_duckdb_behind(pg: PostgresWarehouse, green_clean):
    """DuckDB attaches on a thread of its own while the DDL runs; when the DDL fails, the error
    is the DDL's and the thread, DuckDB and its backends are gone when the load returns."""
    pg_query_autocommit(pg, f'CREATE SCHEMA "{pg.schema}"')
    pg_query_autocommit(pg, f'CREATE TABLE "{pg.schema}".green_trips (x int)')
    # The error's traceback keeps the load's frames, and so DuckDB, alive: closed it must be
    # by the load, not by the garbage collector.
    with pytest.raises(PipelineError, match="not partitioned by month") as failed:
        load_month(green_clean[(2021, 1)], pg)
    assert [t.name for t in threading.enumerate() if t.name.startswith("duckdb")] == []

    def others() -> int:  # DuckDB's backends: ours are named tlc-pipeline, DuckDB's are not
        return pg_query(
            pg,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " AND application_name IS DISTINCT FROM 'tlc-pipeline'",
        )[0][0]

    deadline = time.monotonic() + 5  # a backend exits just after its client hangs up
    while others() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert others() == 0
    assert failed.value  # held until here


def test_nan_and_nat_arrive_as_sql_null(pg_env: PipelineEnv, pg: PostgresWarehouse, tlc: Path):
    t = pq.read_table(tlc / "months" / "green_tripdata_2021-01.parquet")
    n = t.num_rows
    idx = np.arange(n)
    fare = t["fare_amount"].to_numpy(zero_copy_only=False).copy()
    fare[idx % 1000 == 7] = np.nan  # a real NaN in a double column, not a null
    drop = t["lpep_dropoff_datetime"]
    drop = pa.array(
        drop.to_numpy(zero_copy_only=False).astype("datetime64[us]"),
        mask=(idx % 1000 == 9),  # NaT: what pandas writes for a missing time
    )
    flag = pa.array([None if i % 1000 == 11 else "N" for i in range(n)], pa.string())
    t = t.set_column(t.schema.get_field_index("fare_amount"), "fare_amount", pa.array(fare))
    t = t.set_column(
        t.schema.get_field_index("lpep_dropoff_datetime"), "lpep_dropoff_datetime", drop
    )
    t = t.set_column(t.schema.get_field_index("store_and_fwd_flag"), "store_and_fwd_flag", flag)
    src = pg_env.root / "nan.parquet"
    pq.write_table(t, src)
    pg_env.server.publish_month("green", 2021, 1, src, "parquet")
    assert pg_env.build(LoadPostgres(color="green", year=2021, month=1))

    q = f'SELECT count(*) FROM "{pg.schema}".green_trips WHERE '
    assert pg_query(pg, q + "fare_amount = 'NaN'::float8")[0][0] == 0
    assert pg_query(pg, q + "fare_amount IS NULL")[0][0] > 0
    assert pg_query(pg, q + "dropoff_datetime IS NULL")[0][0] > 0
    assert pg_query(pg, q + "store_and_fwd_flag IS NULL")[0][0] > 0
    assert pg_query(pg, q + "store_and_fwd_flag IN ('nan', 'NaN', 'NaT', 'None', '')")[0][0] == 0
    # the NULLs are the ones the clean counted
    quality = pg_env.the_lake().read_quality(MonthKey("green", 2021, 1))
    total = pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".green_trips')[0][0]
    assert total == quality["rows_out"]
    assert pg_query(pg, q + "fare_amount IS NULL")[0][0] == quality["nulls"]["fare_amount"]


# --- faults ---------------------------------------------------------------------------------
def copy_backends(pg: PostgresWarehouse, stage: str) -> list[int]:
    rows = pg_query(
        pg,
        "SELECT pid FROM pg_stat_progress_copy WHERE relid = to_regclass(%s)"
        " AND tuples_processed > 0",
        [f'"{pg.schema}"."{stage}"'],
    )
    return [r[0] for r in rows]


def wait_for_copy(pg: PostgresWarehouse, stage: str, proc=None, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the loader ended before its COPY was seen: {proc.returncode}")
        pids = copy_backends(pg, stage)
        if pids:
            return pids
        time.sleep(0.02)
    raise AssertionError("no COPY into the stage table started")


def load_month(month: Cleaned, pg: PostgresWarehouse) -> int:
    return month.load(pg, "postgres")


def put_clean_month(env: PipelineEnv, month: Cleaned) -> None:
    """Put a month cleaned elsewhere into the pipeline's lake, as CleanParquet would have."""
    prefix = month.lake.clean_prefix(month.key)
    dest = env.lake / prefix
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(month.root / prefix, dest)


def kill_9_mid_copy(env: PipelineEnv, pg: PostgresWarehouse) -> None:
    """Run the real `luigi` LoadPostgres for yellow 2021-01 and kill -9 it once COPY runs."""
    args = ["LoadPostgres", "--color", "yellow", "--year", "2021", "--month", "1"]
    proc = subprocess.Popen(
        [LUIGI, "--module", "pipeline", *args, "--local-scheduler"],
        env=env.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_copy(pg, "_stage_yellow_trips_202101", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill_9_mid_copy_leaves_the_old_month_then_a_rerun_completes_it(
    pg_env: PipelineEnv, pg: PostgresWarehouse, big_clean: Cleaned, green_clean
):
    want = big_clean.report["rows_out"]
    put_clean_month(pg_env, big_clean)

    # First load: killed in the middle of its COPY. The month must be absent.
    kill_9_mid_copy(pg_env, pg)
    assert pg.loaded(MonthKey("yellow", 2021, 1)) is None
    assert month_count(pg, "yellow_trips", 2021, 1) == 0
    assert partitions(pg, "yellow_trips") == {}

    # The rerun completes it, exactly once, and sweeps the killed run's stage.
    assert pg_env.build(LoadPostgres(color="yellow", year=2021, month=1))
    assert month_count(pg, "yellow_trips", 2021, 1) == want
    assert not [t for t in tables(pg) if t.startswith("_stage_")]
    old = partitions(pg, "yellow_trips")

    # A forced reload killed mid-COPY: readers still see the complete old month.
    pg.forget(MonthKey("yellow", 2021, 1))
    kill_9_mid_copy(pg_env, pg)
    assert month_count(pg, "yellow_trips", 2021, 1) == want
    assert partitions(pg, "yellow_trips") == old
    assert pg_env.build(LoadPostgres(color="yellow", year=2021, month=1))
    assert month_count(pg, "yellow_trips", 2021, 1) == want
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".yellow_trips')[0][0] == want


def test_backend_terminated_mid_copy_fails_clearly_and_the_retry_succeeds(
    pg_env: PipelineEnv, pg: PostgresWarehouse, big_clean: Cleaned
):
    want = big_clean.report["rows_out"]
    put_clean_month(pg_env, big_clean)
    killed: list[int] = []

    def terminate() -> None:
        pids = wait_for_copy(pg, "_stage_yellow_trips_202101")
        for pid in pids:
            pg_query(pg, "SELECT pg_terminate_backend(%s)", [pid])
        killed.extend(pids)

    killer = threading.Thread(target=terminate)
    killer.start()
    assert not pg_env.build(LoadPostgres(color="yellow", year=2021, month=1))
    killer.join()
    assert killed
    [(_task, exc)] = [f for f in pg_env.failures if isinstance(f[0], LoadPostgres)]
    assert isinstance(exc, PipelineError)
    msg = str(exc)
    assert "yellow 2021-01" in msg
    assert pg.schema in msg
    assert "terminat" in msg.lower() or "connection" in msg.lower()
    assert pg.loaded(MonthKey("yellow", 2021, 1)) is None
    assert month_count(pg, "yellow_trips", 2021, 1) == 0

    assert pg_env.build(LoadPostgres(color="yellow", year=2021, month=1))
    assert month_count(pg, "yellow_trips", 2021, 1) == want


def test_connection_lost_in_the_swap_reports_why_not_that_it_is_closed(
    pg: PostgresWarehouse, green_clean, monkeypatch: pytest.MonkeyPatch
):
    """The backend is terminated inside the swap's transaction, before COMMIT. The rollback
    on a dead connection raises "connection already closed"; the error must stay the cause."""
    from pipeline.sinks.postgres import warehouse

    def terminate_the_swap(name: str) -> None:
        if name != "postgres.swapping":
            return
        pids = pg_query(  # the swap's session: in its transaction, which has written
            pg,
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND datname = current_database() AND state = 'idle in transaction'"
            " AND backend_xid IS NOT NULL",
        )
        assert len(pids) == 1, pids
        pg_query(pg, "SELECT pg_terminate_backend(%s)", [pids[0][0]])

    monkeypatch.setattr(warehouse, "failpoint", terminate_the_swap)
    d = green_clean[(2021, 1)]
    with pytest.raises(PipelineError) as e:
        load_month(d, pg)
    message = str(e.value)
    assert "already closed" not in message
    assert "terminat" in message.lower() or "server closed" in message.lower(), message
    monkeypatch.undo()
    assert pg.loaded(d.key) is None
    assert load_month(d, pg) == d.report["rows_out"]


def test_two_workers_loading_one_month_at_once_load_it_once(
    pg: PostgresWarehouse, green_clean, monkeypatch: pytest.MonkeyPatch
):
    """Two sessions on one month (two local schedulers, or luigid handing the task on while
    the first holder still runs): the second waits for the month's lock, then finds the month
    loaded since it looked and returns that load instead of loading it again. The first holds
    its swap until the second is seen waiting on the lock in pg_locks."""
    from pipeline.sinks.postgres import warehouse

    def hold_until_the_other_waits(name: str) -> None:
        if name != "postgres.before_swap":
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = pg_query(
                pg,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )[0][0]
            if waiting:
                return
            time.sleep(0.02)  # polling pg_locks for the waiter: the state is observed, not timed

    monkeypatch.setattr(warehouse, "failpoint", hold_until_the_other_waits)
    d = green_clean[(2021, 1)]
    results: list[object] = []

    def load() -> None:
        try:
            results.append(loading.load_month(d.lake, d.key, pg, "postgres"))
        except Exception as e:  # pragma: no cover - reported by the assert below
            results.append(e)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = d.report["rows_out"]
    first, second = results
    assert isinstance(first, LoadRecord), first
    assert first == second, "the second returned the first's load, not one of its own"
    assert first.rows_out == want
    assert pg.loaded(d.key) == first
    assert month_count(pg, "green_trips", 2021, 1) == want


def test_a_month_lock_held_too_long_is_one_clear_error(
    pg: PostgresWarehouse, green_clean, monkeypatch: pytest.MonkeyPatch
):
    """A holder that never lets go (hung, or a half-open connection PostgreSQL has not noticed)
    must not hold the waiter forever. The shipped wait is 900 s; 1 s here, to see it end."""
    from pipeline.sinks.postgres import warehouse

    monkeypatch.setattr(warehouse, "MONTH_LOCK_WAIT", 1.0)
    d = green_clean[(2021, 1)]
    holder = pg.pg.connect()
    try:
        holder.autocommit = True
        holder.cursor().execute(
            "SELECT pg_advisory_lock(hashtext(%s))", [f"{pg.schema}.green_trips_202101"]
        )
        started = time.monotonic()
        with pytest.raises(PipelineError, match="held the month's lock for 1 s") as e:
            load_month(d, pg)
        assert time.monotonic() - started < 10
        assert "nothing was replaced" in str(e.value)
    finally:
        holder.close()
    assert pg.loaded(d.key) is None
    assert load_month(d, pg) == d.report["rows_out"]  # the lock gone, the month loads


def test_first_loads_of_different_months_into_a_new_schema_at_once(
    pg_database: PgConn, green_clean
):
    """Workers on several hosts start a backfill into an empty database: the first loads of
    different months create the schema, the ledger and the partitioned table at the same
    moment. PostgreSQL's IF NOT EXISTS is not safe against a concurrent create (the loser
    fails on pg_type's unique index: seen in the many-hosts test), so each load must still
    succeed. Several rounds, each on a fresh schema, all threads released together."""
    months = list(green_clean.values())
    assert len(months) >= 2
    for round_ in range(4):
        schema = f"t_first_loads_{os.getpid()}_{round_}"
        wh = PostgresWarehouse(pg_database, schema)
        gate = threading.Barrier(len(months))
        results: list[object] = []

        def load(
            d: Cleaned,
            wh: PostgresWarehouse = wh,
            gate: threading.Barrier = gate,
            results: list[object] = results,
        ) -> None:
            gate.wait()
            try:
                results.append(load_month(d, wh))
            except Exception as e:  # reported by the assert below
                results.append(e)

        threads = [threading.Thread(target=load, args=(d,)) for d in months]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert [str(r) for r in results if isinstance(r, Exception)] == []
            assert sorted(results) == sorted(d.report["rows_out"] for d in months)  # type: ignore[type-var]
            assert len(wh.loaded_months()) == len(months)
        finally:
            pg_query_autocommit(wh, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_row_count_mismatch_replaces_nothing(pg: PostgresWarehouse, green_clean):
    d = green_clean[(2021, 1)]
    load_month(d, pg)
    before = partitions(pg, "green_trips"), pg.loaded(MonthKey("green", 2021, 1))
    quality = d.report
    quality["rows_out"] += 1
    with pytest.raises(PipelineError, match="nothing was replaced"):
        pg.replace_month(quality, d.paths)
    assert (partitions(pg, "green_trips"), pg.loaded(MonthKey("green", 2021, 1))) == before
    assert not [t for t in tables(pg) if t.startswith("_stage_")]


# --- identifiers and credentials ------------------------------------------------------------
def test_hostile_schema_name_cannot_inject_sql(pg_database: PgConn, green_clean):
    victim = f"victim_{os.getpid()}"
    admin = PostgresWarehouse(pg_database, "public")
    pg_query_autocommit(admin, f'CREATE TABLE public."{victim}" (x int)')
    hostile = f'evil"; DROP TABLE public.{victim}; --'
    wh = PostgresWarehouse(pg_database, hostile)
    try:
        want = green_clean[(2021, 1)].report["rows_out"]
        assert load_month(green_clean[(2021, 1)], wh) == want
        assert wh.loaded(MonthKey("green", 2021, 1)).rows_out == want
        assert pg_query(admin, "SELECT to_regclass(%s)", [f"public.{victim}"])[0][0] is not None
        (n,) = pg_query(
            admin, 'SELECT count(*) FROM "evil""; DROP TABLE public.' + victim + '; --".green_trips'
        )[0]
        assert n == want
    finally:
        pg_query_autocommit(
            admin, 'DROP SCHEMA IF EXISTS "' + hostile.replace('"', '""') + '" CASCADE'
        )
        pg_query_autocommit(admin, f'DROP TABLE IF EXISTS public."{victim}"')


def pg_query_autocommit(pg: PostgresWarehouse, query: str, params: list | None = None) -> None:
    conn = pg.pg.connect()
    conn.autocommit = True
    try:
        conn.cursor().execute(query, params or [])
    finally:
        conn.close()


def test_password_never_reaches_logs_or_errors(
    pg_env: PipelineEnv, pg: PostgresWarehouse, tlc, refused_port: RefusedPorts
):
    secret = "Sup3r-Secret-pw-4711"
    pg_env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    pg_env.configure(postgres={"password": secret}, core={"log_level": "DEBUG"})
    args = ["LoadPostgres", "--color", "green", "--year", "2021", "--month", "1"]
    ok = subprocess.run(
        [LUIGI, "--module", "pipeline", *args, "--local-scheduler"],
        env=pg_env.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ":)" in ok.stdout + ok.stderr, ok.stderr[-3000:]
    assert secret not in ok.stdout + ok.stderr

    # A failing connection: the error names the server, never the password.
    env = pg_env.env()
    for var in ("PGHOST", "PGPORT"):
        env.pop(var, None)
    pg_env.configure(postgres={"host": "127.0.0.1", "port": refused_port()})
    pg_env.server.publish_month(
        "green", 2023, 2, tlc / "months" / "green_tripdata_2023-02.parquet", "parquet"
    )
    bad = subprocess.run(
        [
            LUIGI,
            "--module",
            "pipeline",
            *args[:-4],
            "--year",
            "2023",
            "--month",
            "2",
            "--local-scheduler",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = bad.stdout + bad.stderr
    assert "cannot connect" in out
    assert secret not in out


# --- the course's ingest CLI -----------------------------------------------------------------
def test_ingest_cli_loads_a_served_month_into_the_named_table(
    pg_env: PipelineEnv, pg: PostgresWarehouse, tlc: Path
):
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    pg_env.server.publish_month("green", 2021, 1, src, "parquet")
    url = pg_env.server.parquet_template.format(color="green", year=2021, month=1)
    c = pg.pg
    env = pg_env.env()
    env.pop("PGHOST", None)
    env["PGPASSWORD"] = "not-needed-with-trust"
    cmd = [
        sys.executable, "-m", "pipeline.ingest",
        "--user", c.user, "--host", c.host, "--port", str(c.port), "--db", c.database,
        "--table_name", f"{pg.schema}.green_taxi_trips", "--url", url,
    ]  # fmt: skip
    want = expected_from_pandas(src, 2021, 1)["rows_out"]
    for _ in range(2):  # and a rerun replaces the month, it does not append
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "not-needed-with-trust" not in run.stdout + run.stderr
        assert month_count(pg, "green_taxi_trips", 2021, 1) == want
    assert f"loaded {want:,} rows into {pg.schema}.green_taxi_trips" in run.stderr

    missing = subprocess.run(
        [*cmd[:-1], url.replace("2021-01", "2031-01")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 3, missing.stderr[-2000:]
    assert "2031-01" in missing.stderr
    assert "not published" in missing.stderr.lower()


def test_zones_load_into_postgres_through_the_sink(pg_env: PipelineEnv, pg: PostgresWarehouse):
    assert pg_env.build(LoadZones(sink="postgres"))
    rows = pg_query(
        pg, f'SELECT location_id, borough, zone FROM "{pg.schema}".taxi_zones ORDER BY 1 LIMIT 1'
    )
    assert rows == [(1, "EWR", "Newark Airport")]
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".taxi_zones')[0][0] == 265
    first = pg.zones_loaded()
    assert first is not None
    assert first.kind == "zones"
    assert pg_env.build(LoadZones(sink="postgres"))  # complete: nothing reloaded
    assert pg.zones_loaded() == first


def test_luigi_markers_of_an_earlier_version_are_carried_into_the_ledger(
    pg: PostgresWarehouse, green_clean
):
    """Loads made before the ledger recorded themselves in Luigi's table_updates as
    ``schema.table/YYYY-MM/rows=N/source=S/clean=C``: they stay loaded, not reloaded."""
    d = green_clean[(2021, 1)]
    report = d.report
    clean = report["files"][0]["sha256"]
    pg_query_autocommit(pg, f'CREATE SCHEMA "{pg.schema}"')
    pg_query_autocommit(
        pg,
        "CREATE TABLE IF NOT EXISTS table_updates (update_id TEXT PRIMARY KEY,"
        " target_table TEXT, inserted TIMESTAMP DEFAULT now())",
    )
    month = f"{pg.schema}.green_trips/2021-01/rows={report['rows_out']}/source=s/clean={clean}"
    zones = f"{pg.schema}.taxi_zones/0000-00/rows=265/source=z/clean=z"
    for uid, target in ((month, "green_trips"), (zones, "taxi_zones")):
        pg_query_autocommit(
            pg, "INSERT INTO table_updates VALUES (%s, %s)", [uid, f"{pg.schema}.{target}"]
        )
    record = pg.loaded(MonthKey("green", 2021, 1))
    assert record is not None
    assert record.matches(report)
    assert record.code_version == "before 0.1.0"
    zones_record = pg.zones_loaded()
    assert zones_record is not None
    assert zones_record.rows_out == 265
    assert list(pg.loaded_months()) == [MonthKey("green", 2021, 1)]
