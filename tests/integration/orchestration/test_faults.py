"""The fault campaign: real processes, real kills, counts checked independently afterwards.

- ``kill -9`` at named points spread over a whole IngestMonth into DuckDB and PostgreSQL
  (pipeline/util/failpoints.py: the process reaches the point, writes a file, and waits; the test
  sees the file and kills it), some twice in a row. After each kill nothing half-done looks
  complete; a plain rerun converges to exact counts with no duplicates.
- luigid killed (-9) and restarted mid-backfill: the backfill completes, each month once.
- PostgreSQL restarted in the middle of a COPY: the run fails with one line, the next is exact.
- A full disk during the download and during the clean: one error naming the file, nothing
  published, no temporary file left.

The GCS and BigQuery faults are in tests/integration/sinks/test_gcp_faults.py (a fault proxy).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.domain import months
from pipeline.domain.errors import LakeWriteError
from pipeline.domain.months import MonthKey
from pipeline.lake import local as lake
from pipeline.orchestration import config
from pipeline.orchestration.tasks import CleanParquet, DownloadMonth, LoadDuckDB, LoadPostgres
from pipeline.sinks.postgres import PgConn, PostgresWarehouse
from pipeline.util.failpoints import DIR_ENV, ENV
from tests.support import pg as pgserver
from tests.support.fixtures import REPO, PipelineEnv, pg_query
from tests.support.luigid import Luigid
from tests.support.tlc_server import Fault
from tools.synthetic import write_yellow_month

LUIGI = str(Path(sys.executable).parent / "luigi")
FORGET = str(Path(sys.executable).parent / "tlc-forget")
ROWS = 600_000  # enough that the COPY and the clean take a while; small enough to be quick
MONTH = ["--year", "2021", "--month", "1"]


def start(env: PipelineEnv, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
    """`luigi --module pipeline ...` in its own process group, output in a pipe."""
    return subprocess.Popen(
        [LUIGI, "--module", "pipeline", *args],
        env={**env.env(), **(extra or {})},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(env: PipelineEnv, *args: str) -> subprocess.CompletedProcess:
    cmd = [LUIGI, "--module", "pipeline", *args] if not args[0].startswith("/") else list(args)
    return subprocess.run(
        cmd, env=env.env(), cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def month_rows_duckdb(env: PipelineEnv, year: int, month: int) -> int:
    if not env.duckdb.exists():
        return 0
    start, end = months.bounds(year, month)
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        if not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'yellow_trips'"
        ).fetchone()[0]:
            return 0
        return con.execute(
            "SELECT count(*) FROM yellow_trips WHERE pickup_datetime >= ? AND pickup_datetime < ?",
            [start, end],
        ).fetchone()[0]


def month_rows_pg(pg: PostgresWarehouse, year: int, month: int) -> int:
    start, end = months.bounds(year, month)
    found = pg_query(pg, "SELECT to_regclass(%s)", [f'"{pg.schema}".yellow_trips'])[0][0]
    if found is None:
        return 0
    return pg_query(
        pg,
        f'SELECT count(*) FROM "{pg.schema}".yellow_trips'
        " WHERE pickup_datetime >= %s AND pickup_datetime < %s",
        [start, end],
    )[0][0]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name] if root.exists() else []


# --- kill -9 anywhere in a month ---------------------------------------------------------------
# (point, kills in a row): every risky moment of DownloadMonth, CleanParquet, LoadZones and
# both loads. The zone points come first: the zones load once per warehouse.
POINTS = [
    ("zones.duckdb", 1),
    ("zones.postgres", 1),
    ("download.streaming", 2),
    ("download.before_publish", 1),
    ("clean.writing", 2),
    ("clean.before_publish", 1),
    ("duckdb.loading", 2),
    ("duckdb.before_commit", 1),
    ("postgres.copying", 1),
    ("postgres.before_swap", 1),
    ("postgres.swapping", 2),
]


def kill_at(env: PipelineEnv, point: str, failpoints: Path, timeout: float = 120) -> str:
    """Run IngestMonth until it reaches ``point``, then kill -9 its whole process group."""
    for old in failpoints.glob(f"{point}.*"):
        old.unlink()
    extra = {ENV: point, DIR_ENV: str(failpoints)}
    proc = start(env, "IngestMonth", *MONTH, "--local-scheduler", extra=extra)
    deadline = time.monotonic() + timeout
    while not list(failpoints.glob(f"{point}.*")):
        if proc.poll() is not None:
            out = proc.communicate()[0][-3000:]
            raise AssertionError(f"{point}: the run ended ({proc.returncode}) first:\n{out}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{point} was not reached within {timeout} s")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return point


def assert_nothing_half_done_looks_complete(
    env: PipelineEnv, pg: PostgresWarehouse, want: int, source: Path
) -> None:
    """Whatever each task says about itself is true, and no sink holds part of the month."""
    the_lake, key = env.the_lake(), MonthKey("yellow", 2021, 1)
    if DownloadMonth(year=2021, month=1).complete():
        raw = the_lake.raw(the_lake.raw_name(key, "parquet"))
        assert raw is not None
        assert lake.sha256_file(env.lake / raw.name) == lake.sha256_file(source)
        assert raw.manifest["sha256"] == lake.sha256_file(source)
    if CleanParquet(year=2021, month=1).complete():
        q = the_lake.read_quality(key)
        (part,) = (env.lake / n for n in the_lake.clean_files(key, q))
        assert pq.read_metadata(part).num_rows == q["rows_out"] == want
        assert lake.sha256_file(part) == q["files"][0]["sha256"]
    duck_rows, pg_rows = month_rows_duckdb(env, 2021, 1), month_rows_pg(pg, 2021, 1)
    assert duck_rows in (0, want), duck_rows  # all of the month or none: never a part
    assert pg_rows in (0, want), pg_rows
    if LoadDuckDB(year=2021, month=1).complete():
        assert duck_rows == want
    if LoadPostgres(year=2021, month=1).complete():
        assert pg_rows == want


def assert_exact(env: PipelineEnv, pg: PostgresWarehouse, want: int) -> None:
    assert month_rows_duckdb(env, 2021, 1) == want
    assert month_rows_pg(pg, 2021, 1) == want
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM yellow_trips").fetchone()[0] == want
        markers = con.execute("SELECT rows_out FROM _pipeline_loads WHERE color = 'yellow'")
        assert markers.fetchall() == [(want,)]
        assert con.execute("SELECT count(*) FROM taxi_zones").fetchone()[0] == 265
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".yellow_trips')[0][0] == want
    assert pg.loaded(MonthKey("yellow", 2021, 1)).rows_out == want
    assert pg_query(pg, f'SELECT count(*) FROM "{pg.schema}".taxi_zones')[0][0] == 265
    stages = pg_query(
        pg, "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
        [pg.schema, "\\_stage\\_%"],
    )  # fmt: skip
    assert stages == [(0,)]
    assert temp_files(env.lake) == []


def test_kill_9_anywhere_in_a_month_then_a_plain_rerun_converges(
    pg_env: PipelineEnv, pg: PostgresWarehouse, tmp_path: Path
):
    env = pg_env
    env.configure(pipeline={"sinks": ["duckdb", "postgres"]})
    source = write_yellow_month(env.root / "src" / "yellow_2021_01.parquet", ROWS, seed=7)
    env.server.publish_month("yellow", 2021, 1, source, "parquet")
    failpoints = tmp_path / "failpoints"
    want: int | None = None
    for point, times in POINTS:
        for _ in range(times):
            if point.startswith("zones."):  # make sure that zone load is still to do
                config.sink(point.split(".")[1]).forget_zones()
            kill_at(env, point, failpoints)
            if want is None:
                want = _rows_out_once_cleaned(env)
            assert_nothing_half_done_looks_complete(env, pg, want or -1, source)
        rerun = finish(env, "IngestMonth", *MONTH, "--local-scheduler")
        assert rerun.returncode == 0, f"after {point}: {rerun.stderr[-3000:]}"
        want = _rows_out_once_cleaned(env)
        assert_exact(env, pg, want)
        # Start the next point from scratch: everything but the rows goes (they are replaced).
        forgot = finish(env, FORGET, *MONTH, "--from", "raw", "--sink", "all", "--yes")
        assert forgot.returncode == 0, forgot.stderr


def _rows_out_once_cleaned(env: PipelineEnv) -> int | None:
    q = env.the_lake().quality(MonthKey("yellow", 2021, 1))
    return q["rows_out"] if q is not None else None


# --- luigid killed mid-backfill ------------------------------------------------------------------
@pytest.mark.luigid  # starts, kills and restarts its own luigid
def test_luigid_killed_and_restarted_mid_backfill_completes_each_month_once(
    env: PipelineEnv, tmp_path: Path
):
    months = [(2021, m) for m in (1, 2, 3)]
    for y, m in months:
        src = write_yellow_month(env.root / "src" / f"{m}.parquet", 20_000, y, m, seed=m)
        env.server.publish_month("yellow", y, m, src, "parquet")
    release = threading.Event()
    env.server.fail("/trip-data/yellow_tripdata_2021-02.parquet", Fault("hold", release=release))
    d = Luigid(tmp_path / "luigid")
    # Where this test's luigid listens: the only [core] setting the test changes.
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": d.port})
    proc = start(env, "Backfill", "--colors", "yellow", "--start", "2021-01", "--end", "2021-03")
    try:
        env.server.wait_for_request("yellow_tripdata_2021-02")  # the worker is mid-backfill
        checkpoint = d.workdir / "state.pickle"
        deadline = time.monotonic() + 30
        while not checkpoint.exists():  # tlc-luigid's first checkpoint (every 5 s)
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.05)
        d.kill()
        d.start()  # same port, same --state-path
    finally:
        release.set()
    out = proc.communicate(timeout=300)[0]
    d.stop()
    assert proc.returncode == 0, out[-3000:]
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        per_month = dict(
            con.execute(
                "SELECT month(pickup_datetime), count(*) FROM yellow_trips GROUP BY 1"
            ).fetchall()
        )
        markers = dict(
            con.execute(
                "SELECT month, rows_out FROM _pipeline_loads WHERE kind = 'month'"
            ).fetchall()
        )
    assert sorted(per_month) == [1, 2, 3]
    assert per_month == {m: markers[m] for m in (1, 2, 3)}
    for _, m in months:
        q = env.the_lake().read_quality(MonthKey("yellow", 2021, m))
        assert per_month[m] == q["rows_out"]


# --- PostgreSQL restarted mid-COPY -------------------------------------------------------------
@pytest.fixture
def own_cluster(env: PipelineEnv) -> Iterator[pgserver.Cluster]:
    try:
        cm = pgserver.throwaway_cluster()
        cluster = cm.__enter__()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot start a throwaway PostgreSQL cluster for this test: {e}")
    try:
        yield cluster
    finally:
        cm.__exit__(None, None, None)


def test_postgres_restarted_mid_copy_fails_once_then_the_next_run_is_exact(
    env: PipelineEnv, own_cluster: pgserver.Cluster
):
    c = own_cluster.conn
    env.configure(
        postgres={"host": c.host, "port": c.port, "database": "postgres", "user": "postgres"}
    )
    saved = {v: os.environ.pop(v, None) for v in pgserver.PG_VARS}  # this cluster, not PG*
    try:
        src = write_yellow_month(env.root / "src" / "big.parquet", ROWS, seed=3)
        env.server.publish_month("yellow", 2021, 1, src, "parquet")
        pg = PostgresWarehouse(PgConn(c.host, c.port, "postgres", "postgres"), "public")
        proc = start(env, "LoadPostgres", *MONTH, "--local-scheduler")
        deadline = time.monotonic() + 120
        while not _copying(pg):
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "no COPY seen"
            time.sleep(0.02)
        own_cluster.restart()
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 30, out[-3000:]
        assert "Traceback" not in out
        failed = [line for line in out.splitlines() if " ERROR " in line and "failed" in line]
        assert len(failed) == 1, out[-3000:]
        assert "load of yellow 2021-01 into public.yellow_trips failed" in failed[0]
        assert month_rows_pg(pg, 2021, 1) == 0
        assert pg.loaded(MonthKey("yellow", 2021, 1)) is None

        rerun = finish(env, "LoadPostgres", *MONTH, "--local-scheduler")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        want = env.the_lake().read_quality(MonthKey("yellow", 2021, 1))
        assert month_rows_pg(pg, 2021, 1) == want["rows_out"]
        assert pg.loaded(MonthKey("yellow", 2021, 1)).rows_out == want["rows_out"]
    finally:
        for var, value in saved.items():
            if value is not None:
                os.environ[var] = value


def _copying(pg: PostgresWarehouse) -> bool:
    """The month's COPY into its stage has begun. Not any COPY: LoadZones copies the zone
    lookup first, and a restart during that one fails the month's load at its connect."""
    try:
        rows = pg_query(
            pg,
            "SELECT count(*) FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid"
            " WHERE c.relname = '_stage_yellow_trips_202101' AND p.tuples_processed > 0",
        )
    except Exception:
        return False
    return rows[0][0] > 0


# --- a full disk -------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB filesystem of the test's own (tmpfs), for the lake."""
    if os.geteuid() != 0:
        pytest.skip("NOT RUN: mounting a small tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("stage", ["download", "clean"])
def test_disk_full_fails_once_naming_the_file_and_publishes_nothing(
    env: PipelineEnv, tlc: Path, small_disk: Path, stage: str
):
    env.configure(lake={"root": str(small_disk / "lake")})
    if stage == "download":
        # a 2.4 MB month into a 2 MB lake: the download cannot fit
        src = write_yellow_month(env.root / "src.parquet", 100_000, seed=5)
        assert src.stat().st_size > 2 << 20
    else:
        src = tlc / "months" / "green_tripdata_2021-01.parquet"  # 1.4 MB: fits; its clean not
    color = "yellow" if stage == "download" else "green"
    env.server.publish_month(color, 2021, 1, src, "parquet")
    assert not env.build(CleanParquet(color=color, year=2021, month=1))
    [(task, error)] = env.failures
    assert task.task_family == ("DownloadMonth" if stage == "download" else "CleanParquet")
    assert isinstance(error, LakeWriteError)
    # the object it was writing: raw/.../{color}_tripdata_2021-01.{writer}.parquet, or the
    # clean month's clean/.../month=01/part-0.{writer}.parquet
    named = f"{color}_tripdata_2021-01." if stage == "download" else "month=01/part-0."
    assert named in str(error)
    assert "No space left on device" in str(error)
    assert temp_files(small_disk) == []
    key = MonthKey(color, 2021, 1)
    assert env.the_lake().quality(key) is None
    if stage == "download":
        assert env.the_lake().raw(env.the_lake().raw_name(key, "parquet")) is None
        assert [p for p in (small_disk / "lake").rglob("*") if p.is_file()] == []
        assert env.server.count("yellow_tripdata_2021-01") == 1  # a full disk is not retried
    else:
        assert [p for p in (small_disk / "lake/clean").rglob("*") if p.is_file()] == []
