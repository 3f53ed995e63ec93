"""Long tasks report progress to a real luigid: a percentage and a status message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.fixtures import REPO, PipelineEnv
from tests.support.tlc_server import Fault


def test_download_and_clean_report_progress_to_luigid(env: PipelineEnv, tlc: Path, luigid):
    url = env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    env.server.fail(url.removeprefix(env.server.url), Fault("throttle", delay=4.0))
    cmd = [
        str(Path(sys.executable).parent / "luigi"),
        "--module",
        "pipeline",
        "CleanParquet",
        "--color",
        "green",
        "--year",
        "2021",
        "--month",
        "1",
        "--scheduler-host",
        "127.0.0.1",
        "--scheduler-port",
        str(luigid.port),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[tuple[str, int | None, str | None]] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        for task in luigid.tasks("RUNNING").values():
            seen.append((task["name"], task.get("progress_percentage"), task.get("status_message")))
        time.sleep(0.2)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out[-3000:]

    downloads = [s for s in seen if s[0] == "DownloadMonth" and s[2]]
    assert downloads, f"no progress seen in luigid: {seen}"
    midway = [p for _, p, _ in downloads if p is not None and 0 < p < 100]
    assert midway, downloads
    assert any(" MB of " in m and "MB/s" in m for _, _, m in downloads), downloads
    done = luigid.tasks("DONE")
    assert {t["name"] for t in done.values()} >= {"DownloadMonth", "CleanParquet"}
    clean_id = next(k for k, t in done.items() if t["name"] == "CleanParquet")
    message = luigid.api("get_task_status_message", {"task_id": clean_id})["statusMessage"]
    assert "cleaned 76,518 rows" in message
