"""tlc-cron as real processes: which months, the lock, a scheduler that is down, and months
that are not out yet."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.cli.cron import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_NO_SCHEDULER,
    EXIT_OK,
    EXIT_USAGE,
)
from tests.support.commands import STARTUP, unreachable_source
from tests.support.fixtures import REPO, PipelineEnv
from tests.support.luigid import Luigid
from tests.support.tlc_server import Fault, RefusedPorts
from tools.synthetic import write_yellow_month

CRON = str(Path(sys.executable).parent / "tlc-cron")
LUIGI = str(Path(sys.executable).parent / "luigi")


def configure_cron(env: PipelineEnv, **cron: object) -> None:
    env.configure(
        cron={
            "colors": ["yellow"],
            "catch_up_months": 2,
            "publication_lag_days": 30,
            "local_scheduler": True,
            "lock_file": str(env.root / "cron.lock"),
            "log_file": str(env.root / "logs" / "tlc-cron.log"),
            **cron,
        }
    )


def run_cron(env: PipelineEnv, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CRON, *args],
        env=env.env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def publish(env: PipelineEnv, y: int, m: int) -> None:
    src = write_yellow_month(env.root / "src" / f"{y}{m:02d}.parquet", 2000, y, m, seed=m)
    env.server.publish_month("yellow", y, m, src, "parquet")


def test_unpublished_month_is_normal_and_logged(env: PipelineEnv):
    configure_cron(env)
    publish(env, 2021, 1)  # February is "not out yet"
    proc = run_cron(env, "--today", "2021-04-05")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == EXIT_OK, out[-3000:]
    assert "not published yet: yellow 2021-02" in out
    assert "summary: done 1, skipped 0, not yet published 1, failed 0" in out
    log = (env.root / "logs" / "tlc-cron.log").read_text()
    assert "summary: done 1" in log  # the rotating file has the same lines

    # the next night, February is out: January is skipped, February done
    publish(env, 2021, 2)
    proc = run_cron(env, "--today", "2021-04-06")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == EXIT_OK, out[-3000:]
    assert "summary: done 1, skipped 1, not yet published 0, failed 0" in out


def test_a_second_overlapping_run_exits_at_once(env: PipelineEnv):
    configure_cron(env)
    publish(env, 2021, 1)
    publish(env, 2021, 2)
    release = threading.Event()
    env.server.fail("/trip-data/yellow_tripdata_2021-01.parquet", Fault("hold", release=release))
    first = run_cron(env, "--today", "2021-04-05")
    try:
        # The first run is inside its download, so it holds the lock: that request is the sign.
        env.server.wait_for_request("yellow_tripdata_2021-01")
        t0 = time.monotonic()
        second = run_cron(env, "--today", "2021-04-05")
        out2 = second.communicate(timeout=60)[0]
        assert time.monotonic() - t0 < 10
        assert second.returncode == EXIT_LOCKED, out2[-2000:]
        assert "another tlc-cron run holds" in out2
    finally:
        release.set()
    out1 = first.communicate(timeout=300)[0]
    assert first.returncode == EXIT_OK, out1[-3000:]


def test_scheduler_down_fails_clearly(env: PipelineEnv, refused_port: RefusedPorts):
    configure_cron(env, local_scheduler=False)
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": refused_port()})
    proc = run_cron(env, "--today", "2021-04-05")
    started = time.monotonic()
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == EXIT_NO_SCHEDULER, out[-2000:]
    assert time.monotonic() - started < 5 + STARTUP
    assert "luigid at http://127.0.0.1:" in out
    assert "unreachable" in out
    assert "Traceback" not in out
    assert env.server.requests == []  # nothing ran unseen


def test_cron_against_an_unreachable_source_ends_within_bound(env: PipelineEnv):
    configure_cron(env)
    unreachable_source(env)
    proc = run_cron(env, "--today", "2021-04-05")
    started = time.monotonic()
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == EXIT_FAILED, out[-3000:]
    assert time.monotonic() - started < 30 + STARTUP
    assert "summary: done 0, skipped 0, not yet published 0, failed 2" in out
    assert "Traceback" not in out


def test_months_held_up_by_a_failed_zone_lookup_are_not_success(env: PipelineEnv):
    """Every month's load needs the zone lookup. When its download fails, no month task fails
    or runs, so no month event fires: the run must still say the months were not done, and
    exit 1, not "failed 0" and 0."""
    configure_cron(env)
    publish(env, 2021, 1)
    publish(env, 2021, 2)
    page = env.root / "error.html"
    page.write_text("<!DOCTYPE html><html><body>503 Service Unavailable</body></html>\n")
    env.server.publish("/misc/taxi_zone_lookup.csv", page)
    proc = run_cron(env, "--today", "2021-04-05")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == EXIT_FAILED, out[-3000:]
    assert "not done, behind a task that failed (see above): yellow 2021-01, yellow 2021-02" in out
    assert "summary: done 0, skipped 0, not yet published 0, failed 0, not run 2" in out
    assert "Traceback" not in out


def test_catch_up_months_below_one_is_a_usage_error(env: PipelineEnv):
    configure_cron(env, catch_up_months=0)
    proc = run_cron(env, "--today", "2021-04-05")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == EXIT_USAGE, out[-3000:]
    assert "[cron] catch_up_months = 0: must be 1 or more" in out
    assert "Traceback" not in out


def test_months_another_worker_holds_are_not_a_failure(env: PipelineEnv, luigid: Luigid):
    """tlc-cron on several hosts against one luigid (docs/scaling.md): a month another
    worker is running is not done by this run, and that is normal: exit 0, said in one line."""
    configure_cron(env, local_scheduler=False)
    env.configure(
        core={"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port},
        # The env fixture's 2 s read timeout would end the other worker's held download (and
        # its retry would finish the month) while this run still looks: it must hold it.
        source={"read_timeout": 120.0},
    )
    publish(env, 2021, 1)
    publish(env, 2021, 2)
    release = threading.Event()
    env.server.fail("/trip-data/yellow_tripdata_2021-02.parquet", Fault("hold", release=release))
    other = subprocess.Popen(
        [LUIGI, "--module", "pipeline", "IngestMonth", "--year", "2021", "--month", "2"],
        env=env.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        env.server.wait_for_request("yellow_tripdata_2021-02")  # the other worker has it
        proc = run_cron(env, "--today", "2021-04-05")
        out = proc.communicate(timeout=300)[0]
    finally:
        release.set()
        other_out = other.communicate(timeout=300)[0]
    assert other.returncode == 0, other_out[-3000:]
    assert proc.returncode == EXIT_OK, out[-3000:]
    assert "not done here, another worker holds them (luigid): yellow 2021-02" in out
    assert "summary: done 1, skipped 0, not yet published 0, failed 0, not run 1" in out
