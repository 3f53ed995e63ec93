"""Publication under a real kill -9: a month killed mid-clean is never published (no
_quality.json), and the rerun publishes it and sweeps what the dead process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.domain.months import MonthKey
from pipeline.lake.lake import local
from tests.support.lakes import clean_file, files_under

KILL_SCRIPT = """
import sys, time
from pathlib import Path
from pipeline.domain.months import MonthKey
from tests.support.lakes import clean_file
def slow(rows):
    print(rows, flush=True)
    time.sleep(0.05)
clean_file(Path(sys.argv[1]), "parquet", MonthKey("green", 2021, 1), Path(sys.argv[2]),
           progress=slow, batch_rows=2000)
"""
KEY = MonthKey("green", 2021, 1)


def test_kill_9_during_clean_leaves_no_month_and_rerun_sweeps(tlc: Path, tmp_path: Path):
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    out = tmp_path / "lake"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(src), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.stdout is not None
    for _ in range(5):  # let it write a few batches
        assert proc.stdout.readline(), "the clean ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lake = local(out)
    assert lake.quality(KEY) is None, "a killed clean must not look complete"
    leftovers = files_under(out)
    assert len(leftovers) == 1
    assert leftovers[0].rsplit("/", 1)[1].startswith(".part-0."), leftovers
    assert ".tmp-" in leftovers[0]

    q = clean_file(src, "parquet", KEY, out)
    assert q["rows_out"] == 76368
    assert files_under(out) == sorted([lake.quality_name(KEY), *lake.clean_files(KEY, q)]), (
        "the dead process's temporary is swept"
    )
