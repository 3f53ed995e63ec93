"""Atomic publishing: a file or month folder is complete under its final name, or absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.lake import local as lake

KILL_SCRIPT = """
import sys, time
from pathlib import Path
from pipeline.domain.months import MonthKey
from pipeline.transform.clean import clean_month
def slow(rows):
    print(rows, flush=True)
    time.sleep(0.05)
clean_month(Path(sys.argv[1]), "parquet", MonthKey("green", 2021, 1), Path(sys.argv[2]),
            progress=slow, batch_rows=2000)
"""


def write_then_fail(publisher, write) -> None:
    with publisher as tmp:
        write(tmp)
        raise RuntimeError("boom")


def test_atomic_file_publishes_only_on_success(tmp_path: Path):
    final = tmp_path / "a" / "f.txt"
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(lake.atomic_file(final), lambda tmp: tmp.write_text("half"))
    assert list((tmp_path / "a").iterdir()) == []
    with lake.atomic_file(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]


def test_atomic_dir_replaces_a_published_folder_whole(tmp_path: Path):
    final = tmp_path / "month=01"
    with lake.atomic_dir(final) as tmp:
        (tmp / "old.parquet").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(lake.atomic_dir(final), lambda tmp: (tmp / "new.parquet").write_text("x"))
    assert [p.name for p in final.iterdir()] == ["old.parquet"]
    with lake.atomic_dir(final) as tmp:
        (tmp / "new.parquet").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["month=01"]


def test_sweep_removes_only_temps_of_dead_processes_of_this_host(tmp_path: Path):
    final = tmp_path / "f.parquet"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    mine = lake.temp_name(final)
    theirs = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{dead}-"))
    other_host = final.with_name(f".{final.name}.tmp-otherhost-{dead}-abcd1234")
    for p in (mine, theirs, other_host):
        p.write_text("x")
    assert lake.sweep_stale_temps(final) == [theirs]
    assert mine.exists()
    assert other_host.exists()


def test_kill_9_during_clean_leaves_no_month_and_rerun_sweeps(tlc: Path, tmp_path: Path):
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    out = tmp_path / "clean" / "month=01"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(src), str(out)], stdout=subprocess.PIPE, text=True
    )
    for _ in range(5):  # let it write a few batches
        assert proc.stdout.readline(), "the clean ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = list(out.parent.iterdir())
    assert not out.exists(), "a killed clean must not look complete"
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".month=01.tmp-")

    from pipeline.domain.months import MonthKey
    from pipeline.transform.clean import clean_month

    q = clean_month(src, "parquet", MonthKey("green", 2021, 1), out)
    assert q["rows_out"] == 76368
    assert [p.name for p in out.parent.iterdir()] == ["month=01"], "stale temp swept"


def test_sha256_file(tmp_path: Path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert lake.sha256_file(p) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
