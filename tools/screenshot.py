"""Regenerate docs/luigid-visualizer.png: a real luigid showing one month's DAG.

    .venv/bin/python docs/make_screenshot.py   # needs Debian's chromium and ../shared

It serves the real green 2021-01 file from a local TLC-like server, runs IngestMonth (DuckDB
sink) against a fresh luigid, then has headless Chromium photograph the visualizer's graph
of that month.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fixtures import TLC, ZONES_FILE, _to_toml  # noqa: E402
from tests.support.luigid import Luigid  # noqa: E402
from tests.support.tlc_server import TLCServer  # noqa: E402


def main() -> None:
    out = REPO / "docs" / "luigid-visualizer.png"
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        server = TLCServer(tmpd / "cdn").start()
        server.publish("/misc/taxi_zone_lookup.csv", ZONES_FILE)
        server.publish_month(
            "green", 2021, 1, TLC / "months" / "green_tripdata_2021-01.parquet", "parquet"
        )
        luigid = Luigid(tmpd / "luigid")
        cfg = tmpd / "shot.toml"
        cfg.write_text(
            _to_toml(
                {
                    "core": {"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port},
                    "worker": {"keep_alive": False},
                    "source": {
                        "parquet_url": server.parquet_template,
                        "zones_url": server.zones_url,
                    },
                    "lake": {"root": str(tmpd / "lake")},
                    "duckdb": {"path": str(tmpd / "w.duckdb")},
                }
            )
        )
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
        subprocess.run(
            [str(Path(sys.executable).parent / "luigi"), "--module", "pipeline", "IngestMonth",
             "--color", "green", "--year", "2021", "--month", "1"],
            env=env, check=True, cwd=REPO, capture_output=True,
        )  # fmt: skip
        [task_id] = [t for t in luigid.tasks("DONE") if t.startswith("IngestMonth")]
        url = (
            f"http://127.0.0.1:{luigid.port}/static/visualiser/index.html"
            f"#tab=graph&taskId={task_id}"
        )
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1400,1000", "--virtual-time-budget=10000",
             f"--screenshot={out}", url],
            check=True, capture_output=True,
        )  # fmt: skip
        luigid.stop()
        server.stop()
    print(out)


if __name__ == "__main__":
    main()
