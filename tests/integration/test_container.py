"""The image and the compose stack, built and run for real with podman.

The image is built from this checkout with ``podman build --format docker``; its base images
are pulled where a registry answers, else replaced by stand-ins built from Debian packages
(tests/support/containers.py). Then docker-compose.yml's default profile runs as a project of
its own, in the order `podman-compose` needs on podman 4.3 (which cannot wait for
``service_healthy``): PostgreSQL, then luigid, each polled with ``podman healthcheck run``; the
one-shot pipeline loads a real month from a TLC mirror on the host into the stack's PostgreSQL
through luigid; the cron service runs tlc-cron on a one-minute schedule; every container is
stopped, timed, and nothing of the project is left.

Skipped (loudly) only where podman is not installed: `.ci/run` installs it on CI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import containers as c
from tests.support.fixtures import REPO, ZONES_FILE, require_tlc_data
from tests.support.tlc_server import TLCServer, free_port

pytestmark = pytest.mark.container

IMAGE = "localhost/tlc-pipeline:latest"  # what docker-compose.yml's `image:` resolves to
PROJECT_PREFIX = "tlc-test-"
# Rows that land after the cleaning rules: the counts tests/integration/transform/test_clean.py
# derives independently with pandas from the same files.
GREEN_2021_01 = 76_368
GREEN_2023_02 = 64_413
# tlc-cron's months for this "today", with publication_lag_days = 60 and catch_up_months = 1
CRON_TODAY = "2023-05-15"
STOP_LIMIT_S = 3.0

TIMINGS: dict[str, float] = {}


def report_timings(config: pytest.Config) -> None:
    """Into the run's output even though pytest captures fixture teardown: CI's log keeps the
    figures."""
    line = "container test timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()})
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("\n" + line)


# -- the image ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    try:
        why = c.unusable()
    except c.ContainerError as e:
        pytest.fail(str(e), pytrace=False)
    if why:
        pytest.skip(f"CONTAINER TEST NOT RUN: {why}")
    logs = tmp_path_factory.mktemp("container-logs")
    swept = c.sweep_stale_projects(PROJECT_PREFIX)
    if swept:
        print(f"removed what killed runs left: {swept}")
    try:
        base = c.ensure_base_images(logs)
        for ref, how in base.how.items():
            TIMINGS[f"base {ref.rsplit('/', 1)[-1]} ({how})"] = base.seconds[ref]
        TIMINGS["image build"] = c.build(REPO, IMAGE, logs / "image-build.log")
    except c.ContainerError as e:
        pytest.fail(str(e), pytrace=False)
    yield IMAGE
    report_timings(request.config)


def test_image_runs_as_its_non_root_user_under_an_init(image: str):
    assert c.run_image(image, "id", "-u").stdout.strip() == "10001"
    run = c.run_image(image, "luigi", "--module", "pipeline", "IngestMonth", "--help")
    assert "--year" in run.stdout, run.stdout
    assert "--color" in run.stdout, run.stdout
    # PID 1 is the init, which forwards signals and reaps; the command is its child
    pid1 = c.run_image(image, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1[0].endswith("dumb-init"), pid1
    # the production crontab is one yacron accepts
    run = c.run_image(image, "yacron", "--validate-config", "-c", "/app/crontab.yaml")
    assert "Configuration is valid" in run.stdout + run.stderr
    # built in docker format: the HEALTHCHECK survived (OCI would have dropped it)
    health = c.podman("image", "inspect", image, "--format", "{{json .HealthCheck}}").stdout
    assert "/app/healthcheck.py" in health, health


def test_image_healthcheck_fails_without_its_scheduler(image: str):
    """The HEALTHCHECK checks the service, not an import: alone, no luigid answers it."""
    name = f"{PROJECT_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}-alone"
    c.podman("run", "-d", "--name", name, image, "python", "-c", "import signal; signal.pause()")
    try:
        run = c.podman("healthcheck", "run", name, check=False, timeout=60)
        assert run.returncode != 0
        assert "does not answer its API" in c.podman("logs", name).stdout + _health_log(name)
        start = time.monotonic()
        c.podman("stop", "-t", "10", name)
        TIMINGS["stop lone container"] = time.monotonic() - start
        assert TIMINGS["stop lone container"] < STOP_LIMIT_S
    finally:
        c.podman("rm", "-f", "-v", name, check=False)


def _health_log(name: str) -> str:
    out = c.podman("inspect", name, "--format", "{{json .State.Health}}", check=False).stdout
    return out if out.strip() not in ("", "null") else ""


# -- the stack ------------------------------------------------------------------------------------
@dataclass
class Stack:
    compose: c.Compose
    server: TLCServer
    luigid_port: int

    def psql(self, query: str) -> str:
        name = self.compose.container("postgres")
        return c.podman(
            "exec", name, "psql", "-U", "tlc", "-d", "tlc", "-tAc", query
        ).stdout.strip()

    def month_rows(self, color: str, year: int, month: int) -> int:
        start = f"{year:04d}-{month:02d}-01"
        end = f"{year + month // 12:04d}-{month % 12 + 1:02d}-01"
        return int(
            self.psql(
                f"SELECT count(*) FROM {color}_trips "
                f"WHERE pickup_datetime >= '{start}' AND pickup_datetime < '{end}'"
            )
        )

    def luigid_tasks(self, status: str) -> dict[str, Any]:
        data = json.dumps({"status": status, "upstream_status": "", "search": ""})
        url = f"http://127.0.0.1:{self.luigid_port}/api/task_list?" + urllib.parse.urlencode(
            {"data": data}
        )
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())["response"]

    def ingest_done(self, color: str, year: int, month: int) -> bool:
        want = {"color": color, "year": str(year), "month": str(month)}
        return any(
            t["name"] == "IngestMonth" and t["params"] == want
            for t in self.luigid_tasks("DONE").values()
        )


@pytest.fixture(scope="module")
def stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tlc = require_tlc_data()
    tmp = tmp_path_factory.mktemp("stack")
    project = f"{PROJECT_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
    config, crontab = tmp / "test.toml", tmp / "crontab.yaml"
    override = tmp / "compose.test.yml"
    # The pipeline and cron read the mirror's URLs from a LUIGI_CONFIG_PATH file over the
    # image's luigi.toml; cron gets a one-minute schedule. Nothing else differs from the file.
    mounts = f"""\
    environment:
      LUIGI_CONFIG_PATH: /app/test.toml
    volumes:
      - {config}:/app/test.toml:ro
"""
    override.write_text(
        "services:\n  pipeline:\n" + mounts + "  cron:\n" + mounts
        + f"      - {crontab}:/app/crontab.yaml:ro\n"
    )  # fmt: skip
    crontab.write_text(
        (REPO / "docker" / "crontab.yaml")
        .read_text()
        .replace("command: tlc-cron", f"command: tlc-cron --today {CRON_TODAY}")
        .replace('schedule: "0 6 * * *"', 'schedule: "* * * * *"')
    )
    assert f"--today {CRON_TODAY}" in crontab.read_text()
    assert 'schedule: "* * * * *"' in crontab.read_text()
    luigid_port = free_port()
    compose = c.Compose(
        project,
        [REPO / "docker-compose.yml", override],
        REPO,
        env={
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "LUIGID_PORT": str(luigid_port),
            "TLC_COLORS": "green",
            "TLC_START": "2021-01",
            "TLC_END": "2021-01",
        },
    )
    server = None
    try:
        start = time.monotonic()
        compose("up", "-d", "postgres")
        compose.wait_healthy("postgres", timeout=120)
        # The mirror listens on the project network's gateway: reachable from its containers,
        # not from outside the machine.
        server = TLCServer(tmp / "cdn", host=compose.network_gateway()).start()
        server.publish("/misc/taxi_zone_lookup.csv", ZONES_FILE)
        for year, month in ((2021, 1), (2023, 2)):
            name = f"green_tripdata_{year:04d}-{month:02d}.parquet"
            server.publish_month("green", year, month, tlc / "months" / name, "parquet")
        config.write_text(
            "[source]\n"
            f'parquet_url = "{server.parquet_template}"\n'
            f'zones_url = "{server.zones_url}"\n'
            "[cron]\n"
            'colors = ["green"]\n'
            "catch_up_months = 1\n"
            "publication_lag_days = 60\n"
        )
        for f in (config, crontab, override):
            f.chmod(0o644)
        compose("up", "-d", "luigid")
        compose.wait_healthy("luigid", timeout=120)
        TIMINGS["stack up (postgres, luigid healthy)"] = time.monotonic() - start
        yield Stack(compose, server, luigid_port)
    except c.ContainerError as e:
        pytest.fail(str(e), pytrace=False)
    finally:
        if server is not None:
            server.stop()
        c.remove_project(project, compose)


def test_pipeline_service_loads_a_real_month_through_luigid(stack: Stack):
    start = time.monotonic()
    run = stack.compose("run", "-T", "--rm", "pipeline", timeout=600, check=False)
    TIMINGS["pipeline run green 2021-01"] = time.monotonic() - start
    assert run.returncode == 0, run.stdout[-6000:] + c.quiet(run.stderr)[-4000:]
    assert stack.server.count("/trip-data/green_tripdata_2021-01.parquet") == 1
    assert stack.month_rows("green", 2021, 1) == GREEN_2021_01
    assert stack.ingest_done("green", 2021, 1), (
        "luigid does not list IngestMonth green 2021-01 DONE"
    )
    # the one-shot container went with --rm
    assert c.containers(stack.compose.project, "pipeline") == []


def test_cron_service_runs_tlc_cron_on_its_schedule(stack: Stack):
    start = time.monotonic()
    stack.compose("up", "-d", "cron")
    name = stack.compose.container("cron")
    try:
        # one-minute schedule: the first run starts at the next minute
        log = c.follow_log(name, r"Job tlc-cron exit code \d+", timeout=150)
    except c.ContainerError as e:
        pytest.fail(str(e), pytrace=False)
    TIMINGS["cron first run, from up"] = time.monotonic() - start
    assert "Job tlc-cron exit code 0" in log, log[-4000:]
    summary = "summary: done 1, skipped 0, not yet published 0, failed 0"
    # tlc-cron logs to stderr (every command does: docs/operations.md), yacron tags the lines
    assert re.search(r"\[tlc-cron stderr\] .*ingesting green for 2023-02 to 2023-02", log), log
    assert re.search(r"\[tlc-cron stderr\] .*" + summary, log), log[-4000:]
    # tlc-cron's own log file, in the lake volume
    assert summary in c.podman("exec", name, "cat", "/data/logs/tlc-cron.log").stdout
    assert stack.server.count("/trip-data/green_tripdata_2023-02.parquet") == 1
    assert stack.month_rows("green", 2023, 2) == GREEN_2023_02
    assert stack.ingest_done("green", 2023, 2), (
        "luigid does not list IngestMonth green 2023-02 DONE"
    )
    # the image's own HEALTHCHECK, in a service: its luigid answers, its volume takes writes
    stack.compose.wait_healthy("cron", timeout=30)


def test_stack_stops_within_seconds_and_leaves_nothing(stack: Stack):
    project = stack.compose.project
    if not c.containers(project, "cron", running=True):
        stack.compose("up", "-d", "cron")
    stopped = {}
    for service in ("cron", "luigid", "postgres"):  # dependents first
        name = stack.compose.container(service)
        start = time.monotonic()
        c.podman("stop", "-t", "10", name, timeout=30)
        stopped[service] = time.monotonic() - start
        TIMINGS[f"stop {service}"] = stopped[service]
    slow = {s: round(t, 1) for s, t in stopped.items() if t >= STOP_LIMIT_S}
    assert not slow, f"containers took {STOP_LIMIT_S} s or more to stop (SIGTERM unheeded?): {slow}"
    stack.compose("down", "-v", "-t", "2")
    left = c.leftovers(project)
    assert not any(left.values()), f"left behind: {left}"
