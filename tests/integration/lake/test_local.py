"""Atomic publishing under a real kill -9: a month folder killed mid-clean never looks
complete, and the rerun sweeps what the dead process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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
