"""Running the real commands in subprocesses, and pointing the pipeline at nothing."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import REPO, PipelineEnv
from tests.support.tlc_server import free_port

STARTUP = 5.0  # allowance for interpreter start-up and imports on a busy CI machine


@dataclass
class Run:
    rc: int
    out: str
    seconds: float

    def lines(self, level: str) -> list[str]:
        return [line for line in self.out.splitlines() if f" {level} " in line[:40]]


def run(cmd: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 180) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


def unreachable_source(env: PipelineEnv) -> int:
    """Point the source at a port nothing listens on; return the port."""
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    env.configure(
        source={
            "parquet_url": dead + "/trip-data/{color}_tripdata_{year:04d}-{month:02d}.parquet",
            "zones_url": dead + "/misc/taxi_zone_lookup.csv",
            # the shipped unreachable_for and backoff: how long a user would wait
            "unreachable_for": 10.0,
            "backoff": 1.0,
        }
    )
    return port
