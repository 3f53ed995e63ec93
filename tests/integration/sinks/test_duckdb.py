"""The DuckDB sink: atomic month replace, rollback, the one-writer lock, identifiers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.sinks.base import LEDGER_COLUMNS
from pipeline.sinks.duckdb import DuckDBWarehouse
from tests.support.lakes import Cleaned, clean_into

JAN, FEB = MonthKey("green", 2021, 1), MonthKey("green", 2021, 2)


@pytest.fixture
def month(tlc: Path, tmp_path: Path) -> Cleaned:
    return clean_into(
        tlc / "months" / "green_tripdata_2021-01.parquet", "parquet", JAN, tmp_path / "lake"
    )


def load_month(month: Cleaned, wh: DuckDBWarehouse) -> int:
    return month.load(wh, "duckdb")


def count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM green_trips").fetchone()[0]


def test_load_writes_its_ledger_row_in_the_same_transaction(month: Cleaned, tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    assert load_month(month, wh) == 76368
    record = wh.loaded(JAN)
    assert record is not None
    report = month.report
    assert (record.kind, record.table_name, record.rows_in, record.rows_out) == (
        "month", "green_trips", 76518, 76368,
    )  # fmt: skip
    assert record.rows_dropped == report["rows_dropped"]
    assert record.clean_sha256 == report["files"][0]["sha256"]
    assert record.matches(report)
    assert record.seconds > 0
    assert wh.loaded(FEB) is None
    assert list(wh.loaded_months()) == [JAN]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        columns = [r[0] for r in con.execute("DESCRIBE _pipeline_loads").fetchall()]
    assert tuple(columns) == LEDGER_COLUMNS


def test_failed_load_rolls_back_to_the_old_month(month: Cleaned, tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    load_month(month, wh)
    record = wh.loaded(JAN)
    report = month.report
    report["rows_out"] += 1  # the clean month no longer matches what arrives
    with pytest.raises(PipelineError, match="rolled back"):
        wh.replace_month(report, month.paths)
    assert count(tmp_path / "w.duckdb") == 76368
    assert wh.loaded(JAN) == record


def test_zones_have_their_own_ledger_row(tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    zones = pa.table({"location_id": pa.array([1], pa.int32()), "borough": ["EWR"],
                      "zone": ["Newark Airport"], "service_zone": ["EWR"]})  # fmt: skip
    record = wh.load_zones(zones, "abc")
    assert (record.kind, record.table_name, record.color, record.year) == (
        "zones", "taxi_zones", None, None,
    )  # fmt: skip
    assert wh.zones_loaded() == record
    assert wh.loaded_months() == {}
    assert wh.forget_zones()
    assert wh.zones_loaded() is None


def test_a_first_version_ledger_is_migrated_and_its_months_stay_loaded(
    month: Cleaned, tmp_path: Path
):
    db = tmp_path / "w.duckdb"
    report = month.report
    sha = report["files"][0]["sha256"]
    with duckdb.connect(str(db)) as con:  # the ledger as 0.0 wrote it
        con.execute(
            "CREATE TABLE _pipeline_loads (color VARCHAR, year INTEGER, month INTEGER,"
            " rows BIGINT, source_sha256 VARCHAR, clean_sha256 VARCHAR, loaded_at TIMESTAMP,"
            " PRIMARY KEY (color, year, month))"
        )
        con.execute(
            "INSERT INTO _pipeline_loads VALUES ('green', 2021, 1, 76368, 'src', ?, now()),"
            " ('taxi_zones', 0, 0, 265, 'z', 'z', now())",
            [sha],
        )
    wh = DuckDBWarehouse(db)
    record = wh.loaded(JAN)
    assert record is not None
    assert record.matches(report)  # so LoadDuckDB does not load it again
    assert record.code_version == "before 0.1.0"
    zones = wh.zones_loaded()
    assert zones is not None
    assert (zones.kind, zones.rows_out) == ("zones", 265)


def test_waits_for_another_process_holding_the_file(month: Cleaned, tmp_path: Path):
    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True);"
            " time.sleep(1.5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    assert load_month(month, DuckDBWarehouse(db, lock_timeout=30)) == 76368
    assert time.monotonic() - start > 0.5
    holder.wait()


def test_lock_held_too_long_is_one_clear_error(month: Cleaned, tmp_path: Path):
    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True);"
            " time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineError, match=r"still locked by another process after 1 s"):
            load_month(month, DuckDBWarehouse(db, lock_timeout=1))
    finally:
        holder.kill()
        holder.wait()


def test_loads_run_with_a_capped_buffer_pool(month: Cleaned, tmp_path: Path):
    """The cap is what keeps a 20M-row load flat (benchmarks/README.md); a load under a cap
    far below the month's size still lands every row, and readers are not capped."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_limit="48MB")
    with wh.connect() as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    assert limit.replace(" ", "") in {"48.0MB", "45.7MiB", "48MB"}, limit
    assert order is False
    assert load_month(month, wh) == 76368 == count(tmp_path / "w.duckdb")
    with wh.connect(read_only=True) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") not in {"48.0MB", "45.7MiB", "48MB"}


@pytest.mark.parametrize("bad", ["lots", "160", "1GB; DROP TABLE x", "'1GB'"])
def test_a_bad_memory_limit_is_one_clear_error(bad: str, tmp_path: Path):
    with pytest.raises(PipelineError, match=r"\[duckdb\] memory_limit"):
        DuckDBWarehouse(tmp_path / "w.duckdb", memory_limit=bad)


def test_a_load_that_outgrows_the_cap_is_one_clear_error(month: Cleaned, tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_limit="4MB")
    with pytest.raises(PipelineError, match=r"memory_limit.*4MB.*raise it"):
        load_month(month, wh)
    assert wh.loaded(JAN) is None


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path):
    """Read by ``complete()`` before any load: a traceback there would be the whole run's."""
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"PAR1 this is not a DuckDB file " * 512)
    with pytest.raises(PipelineError) as e:
        DuckDBWarehouse(path).loaded(JAN)
    message = str(e.value)
    assert message.startswith(f"DuckDB {path}: cannot open it: ")
    assert "not a valid DuckDB database file" in message
    assert "\n" not in message


def test_a_table_that_is_not_the_catalogs_is_one_clear_error_and_loads_nothing(
    month: Cleaned, tmp_path: Path
):
    """A green_trips made by someone else (or an older catalog): DuckDB's binder error names
    the column; the month's rows and its ledger row stay out."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE green_trips (pickup_datetime TIMESTAMP, fare DOUBLE)")
    wh = DuckDBWarehouse(path)
    with pytest.raises(PipelineError) as e:
        load_month(month, wh)
    message = str(e.value)
    assert message.startswith(f"DuckDB {path}: Binder Error: ")
    assert "\n" not in message
    assert wh.loaded(JAN) is None
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM green_trips").fetchone() == (0,)


HOLDER = """
import sys
import duckdb
from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local
from pipeline.orchestration import loading
from pipeline.sinks.duckdb import DuckDBWarehouse

path, lake_root = sys.argv[1], sys.argv[2]
held = duckdb.connect(path)  # the file is this process's: another process's open waits
print("held", flush=True)
sys.stdin.readline()  # the test's go: the other load is waiting for the file
loading.load_month(local(lake_root), MonthKey("green", 2021, 1), DuckDBWarehouse(path), "duckdb")
# A row only a reload of January would drop: the other load must leave it.
held.execute("INSERT INTO green_trips (pickup_datetime) VALUES (TIMESTAMP '2021-01-15')")
held.close()
print("loaded", flush=True)
"""


def test_a_load_that_waited_while_another_process_loaded_the_month_loads_nothing(
    month: Cleaned, tmp_path: Path
):
    """Two processes on one month: the second waits for the file (DuckDB: one writer), and
    when its turn comes the ledger holds this clean month, so it returns that load instead of
    deleting and inserting the month again. The test waits for the second's "waiting" log
    line before the first loads."""
    import logging

    from pipeline.orchestration import loading

    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(month.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    waiting = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "another process holds it; waiting" in record.getMessage():
                waiting.set()

    logger = logging.getLogger("pipeline.sinks.duckdb")
    seen, level = Seen(), logger.level
    logger.addHandler(seen)
    logger.setLevel(logging.INFO)
    results: list[object] = []
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        wh = DuckDBWarehouse(db, lock_timeout=60)
        mine = threading.Thread(
            target=lambda: results.append(loading.load_month(month.lake, JAN, wh, "duckdb"))
        )
        mine.start()
        assert waiting.wait(30), "the second load never waited for the file"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "loaded"
        mine.join(60)
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
        holder.kill()
        holder.wait()
    (mine_record,) = results
    assert mine_record == wh.loaded(JAN), "it returned the other process's load"
    assert count(db) == 76368 + 1, "January was not loaded a second time"


def test_a_month_loaded_before_the_load_started_is_loaded_again(month: Cleaned, tmp_path: Path):
    """A deliberate reload (nothing changed while it waited) replaces the month."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    load_month(month, wh)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("INSERT INTO green_trips (pickup_datetime) VALUES (TIMESTAMP '2021-01-15')")
    assert load_month(month, wh) == 76368
    assert count(tmp_path / "w.duckdb") == 76368
