"""Every run ends, says why in one line, and exits right: the table in docs/operations.md.

Each test runs the real commands (`luigi --module pipeline ...`, `tlc-cron`, `tlc-forget`) in
subprocesses with the configuration as shipped: the package's defaults, the repository's
luigi.toml (or docker/luigi.toml), and a test file on top that only points the source URLs,
the lake and the warehouses at this test's own servers and folders. Nothing here changes a
worker, retry or exit-code setting. Times are measured from process start to exit and
compared with the documented bound plus a start-up allowance (a Python process importing
pyarrow and Luigi takes 1-2 s on these machines).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.commands import STARTUP, Run, run, unreachable_source
from tests.support.fixtures import REPO, PipelineEnv
from tests.support.luigid import Luigid
from tests.support.tlc_server import RefusedPorts
from tests.support.webhook import webhook
from tools.synthetic import write_yellow_month

BIN = Path(sys.executable).parent
LUIGI, CRON, FORGET = str(BIN / "luigi"), str(BIN / "tlc-cron"), str(BIN / "tlc-forget")
RETCODE = {"ok": 0, "missing_data": 20, "task_failed": 30, "scheduling_error": 35, "cannot_run": 40}


def luigi(env: PipelineEnv, *args: str, cwd: Path = REPO, extra_env: dict | None = None) -> Run:
    return run([LUIGI, "--module", "pipeline", *args], {**env.env(), **(extra_env or {})}, cwd)


def assert_one_line_why(r: Run, why: str) -> None:
    """No traceback, and the cause on one line."""
    assert "Traceback" not in r.out, r.out[-4000:]
    assert any(why in line for line in r.out.splitlines()), r.out[-4000:]


def use_scheduler(env: PipelineEnv, luigid: Luigid) -> None:
    # Where this test's luigid listens: the only [core] setting a test changes.
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port})


@pytest.fixture(params=["tlc-luigid", "plain luigid"])
def any_luigid(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Luigid]:
    d = Luigid(tmp_path / "luigid", plain=request.param == "plain luigid")
    yield d
    d.stop()


BAD_HTML = "yellow_tripdata_2022-01.html-error-page.parquet"  # CloudFront's real error page


def publish_bad_month(env: PipelineEnv, tlc: Path) -> None:
    """yellow 2022-01 served as the real CloudFront HTML error page saved as .parquet."""
    bad = tlc / "bad" / BAD_HTML
    env.server.publish_month("yellow", 2022, 1, bad, "parquet")


# --- a month that is not published yet ---------------------------------------------------------
@pytest.mark.parametrize("scheduler", ["local", pytest.param("luigid", marks=pytest.mark.luigid)])
def test_unpublished_month_exits_missing_data_promptly(env: PipelineEnv, tmp_path, scheduler):
    args = ["LoadDuckDB", "--color", "green", "--year", "2021", "--month", "2"]
    if scheduler == "local":
        r = luigi(env, *args, "--local-scheduler")
    else:
        d = Luigid(tmp_path / "luigid")
        try:
            use_scheduler(env, d)
            r = luigi(env, *args)
        finally:
            d.stop()
    assert r.rc == RETCODE["missing_data"], r.out[-3000:]
    assert r.seconds < 10 + STARTUP, r.seconds
    assert "MonthPublished(color=green, year=2021, month=2)" in r.out
    assert "were missing external dependencies" in r.out
    assert env.server.heads == ["/trip-data/green_tripdata_2021-02.parquet"]
    assert "Traceback" not in r.out


def test_unpublished_month_under_the_docker_configuration(env: PipelineEnv, tmp_path: Path):
    """docker/luigi.toml as shipped, as ./luigi.toml; on top only this test's hosts and paths."""
    work = tmp_path / "app"
    work.mkdir()
    shutil.copy(REPO / "docker" / "luigi.toml", work / "luigi.toml")
    env.configure(postgres={"host": "127.0.0.1"}, core={"scheduler_host": "127.0.0.1"})
    r = luigi(env, "LoadDuckDB", "--year", "2031", "--month", "1", "--local-scheduler", cwd=work)
    assert r.rc == RETCODE["missing_data"], r.out[-3000:]
    assert r.seconds < 10 + STARTUP, r.seconds


# --- a broken month ------------------------------------------------------------------------------
def test_broken_month_exits_task_failed_on_any_luigid(env: PipelineEnv, tlc: Path, any_luigid):
    """A plain luigid on Luigi's defaults (15-minute retry delay, unlimited failures) ends the
    same way as tlc-luigid: the retry policy travels with the tasks, and the keep-alive is
    bounded."""
    publish_bad_month(env, tlc)
    use_scheduler(env, any_luigid)
    r = luigi(env, "IngestMonth", "--color", "yellow", "--year", "2022", "--month", "1")
    assert r.rc == RETCODE["task_failed"], r.out[-3000:]
    assert r.seconds < 10 + STARTUP, r.seconds
    assert_one_line_why(r, "BadSourceFile: ")
    assert "an HTML page, not a parquet file" in r.out
    assert env.server.count("yellow_tripdata_2022-01") == 1  # a bad file is not retried


def test_month_disabled_after_repeated_failures_says_so_and_forget_reenables(
    env: PipelineEnv, tlc: Path, luigid: Luigid
):
    publish_bad_month(env, tlc)
    use_scheduler(env, luigid)
    args = ["DownloadMonth", "--color", "yellow", "--year", "2022", "--month", "1"]
    assert luigi(env, *args).rc == RETCODE["task_failed"]
    assert luigi(env, *args).rc == RETCODE["task_failed"]  # second failure: luigid disables it
    task_id = next(iter(luigid.tasks("DISABLED")))
    assert task_id.startswith("DownloadMonth")

    third = luigi(env, *args)
    assert third.rc == RETCODE["scheduling_error"], third.out[-3000:]
    assert third.seconds < 5 + STARTUP
    assert_one_line_why(third, "is disabled in luigid after repeated failures")
    assert "an HTML page" in third.out  # the last error, from luigid
    assert env.server.count("yellow_tripdata_2022-01") == 2  # not tried a third time

    # The month is fixed upstream; tlc-forget re-enables it and the next run loads it.
    src = write_yellow_month(env.root / "good.parquet", 2000, 2022, 1, seed=1)
    env.server.publish_month("yellow", 2022, 1, src, "parquet")
    forgot = run([FORGET, "--year", "2022", "--month", "1"], env.env())
    assert forgot.rc == 0, forgot.out
    assert "luigid's disable of DownloadMonth" in forgot.out
    assert luigi(env, *args).rc == RETCODE["ok"]


def test_a_disabled_zone_lookup_is_re_enabled_by_forgetting_any_month(
    env: PipelineEnv, tlc: Path, luigid: Luigid
):
    """Every month's load needs the zone lookup, and the disabled message says tlc-forget
    re-enables: it must, for the lookup's tasks too."""
    from tests.support.fixtures import ZONES_FILE

    env.server.publish("/misc/taxi_zone_lookup.csv", tlc / "bad" / BAD_HTML)
    use_scheduler(env, luigid)
    assert luigi(env, "DownloadZones").rc == RETCODE["task_failed"]
    assert luigi(env, "DownloadZones").rc == RETCODE["task_failed"]
    assert [t for t in luigid.tasks("DISABLED") if t.startswith("DownloadZones")]

    env.server.publish("/misc/taxi_zone_lookup.csv", ZONES_FILE)  # fixed upstream
    forgot = run([FORGET, "--year", "2021", "--month", "1"], env.env())
    assert forgot.rc == 0, forgot.out
    assert "luigid's disable of DownloadZones" in forgot.out
    assert luigi(env, "DownloadZones").rc == RETCODE["ok"]


# --- luigid down, the source unreachable -----------------------------------------------------
def test_luigid_down_fails_at_once_with_what_to_do(env: PipelineEnv, refused_port: RefusedPorts):
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": refused_port()})
    r = luigi(env, "LoadDuckDB", "--year", "2021", "--month", "1")
    assert r.rc == RETCODE["cannot_run"], r.out
    # at once: not after the 30 s of RPC retries ([core] rpc-retry-*); STARTUP allows for the
    # interpreter on a machine busy with the other test process, as the other bounds do
    assert r.seconds < 5 + STARTUP, r.seconds
    assert_one_line_why(r, "is unreachable")
    assert "tlc-luigid" in r.out
    assert "--local-scheduler" in r.out
    assert env.server.requests == []
    assert env.server.heads == []


def test_source_refusing_connections_fails_within_bound(env: PipelineEnv):
    port = unreachable_source(env)
    r = luigi(env, "LoadDuckDB", "--year", "2021", "--month", "1", "--local-scheduler")
    assert r.rc == RETCODE["scheduling_error"], r.out[-3000:]
    assert r.seconds < 30, r.seconds
    assert_one_line_why(r, f"127.0.0.1:{port} is unreachable: the connection was refused")
    assert "MonthPublished(color=yellow, year=2021, month=1)" not in _completed(r.out)


def _completed(summary: str) -> str:
    m = re.search(
        r"\* \d+ (?:complete ones were encountered|ran successfully):(.*?)\n\*", summary, re.S
    )
    return m.group(1) if m else ""


@pytest.fixture
def offline_netns() -> Iterator[list[str]]:
    """A network namespace with only loopback: a machine with no network at all. DNS fails
    at once there and nothing leaves the machine."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("NOT RUN: needs root and iproute2 for `ip netns` (CI has both)")
    name = f"tlc-offline-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_first_readme_command_offline_fails_fast_naming_the_host(tmp_path, offline_netns):
    """The README's first command exactly, on a machine without network."""
    work = tmp_path / "fresh"
    work.mkdir()
    shutil.copy(REPO / "luigi.toml", work / "luigi.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_CONFIG", "PG"))}
    cmd = [*offline_netns, LUIGI, "--module", "pipeline", "LoadDuckDB", "--color", "yellow"]
    r = run([*cmd, "--year", "2021", "--month", "1", "--local-scheduler"], env, cwd=work)
    assert r.rc == RETCODE["scheduling_error"], r.out[-3000:]
    assert r.seconds < 30, r.seconds
    assert_one_line_why(
        r, "d37ci6vzurychx.cloudfront.net is unreachable: DNS cannot resolve the name"
    )
    assert "MonthPublished" not in _completed(r.out)  # a failed HEAD is never "published"
    assert len(r.out.splitlines()) < 60, r.out


# --- configuration from anywhere ----------------------------------------------------------------
def test_run_from_another_folder_keeps_exit_codes_and_warns_nothing(
    env: PipelineEnv, tlc: Path, tmp_path: Path
):
    elsewhere = tmp_path / "cron-home"  # no luigi.toml here
    elsewhere.mkdir()
    publish_bad_month(env, tlc)
    r = luigi(
        env, "DownloadMonth", "--year", "2022", "--month", "1", "--local-scheduler", cwd=elsewhere
    )
    assert r.rc == RETCODE["task_failed"], r.out[-3000:]
    assert "Config for toml parser added" not in r.out  # LUIGI_CONFIG_PATH=*.toml, no warning
    assert "UserWarning" not in r.out


def test_pipeline_lines_show_under_the_luigi_command(env: PipelineEnv, tlc: Path):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    r = luigi(env, "LoadDuckDB", "--color", "green", "--year", "2021", "--month", "1",
              "--local-scheduler")  # fmt: skip
    assert r.rc == 0, r.out[-3000:]
    summary = [line for line in r.out.splitlines() if "green 2021-01 -> duckdb:" in line]
    assert len(summary) == 1, r.out[-3000:]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO ", summary[0])
    assert "76,518 rows in, 76,368 out (dropped " in summary[0]
    assert "pickup_outside_month" in summary[0]
    assert "loaded in " in summary[0]
    assert "Informed scheduler that task" not in r.out  # routine status lines stay at DEBUG


# --- bad parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--color", "yellow", "--year", "2021", "--month", "13"], "month must be 1..12, got 13"),
        (["--color", "fhvhv", "--year", "2019", "--month", "1"], "fhvhv trips start in 2019-02"),
        (["--color", "purple", "--year", "2021", "--month", "1"], "purple is not a valid choice"),
        (["--color", "green", "--year", "2021", "--month", "x"], "bad parameter: invalid literal"),
    ],
)
def test_bad_parameters_give_one_line(env: PipelineEnv, args, why):
    r = luigi(env, "LoadDuckDB", *args, "--local-scheduler")
    assert r.rc == RETCODE["cannot_run"], r.out
    assert r.seconds < 5 + STARTUP
    assert_one_line_why(r, why)
    assert len(r.lines("ERROR")) == 1, r.out


def test_backfill_with_an_unknown_colour_gives_one_line(env: PipelineEnv):
    r = luigi(env, "Backfill", "--colors", "yellow,purple", "--start", "2021-01", "--end",
              "2021-02", "--local-scheduler")  # fmt: skip
    assert r.rc == RETCODE["cannot_run"], r.out
    assert_one_line_why(r, "--colors 'yellow,purple': expected a comma list")


def test_backfill_that_ends_before_it_starts_gives_one_line(env: PipelineEnv):
    r = luigi(env, "Backfill", "--start", "2021-03", "--end", "2021-01", "--local-scheduler")
    assert r.rc == RETCODE["cannot_run"], r.out
    assert_one_line_why(r, "--start 2021-03 is after --end 2021-01")


def test_an_unknown_sink_in_the_configuration_gives_one_line(env: PipelineEnv):
    env.configure(pipeline={"sinks": ["duckdb", "snowflake"]})
    r = luigi(env, "Backfill", "--start", "2021-01", "--end", "2021-01", "--local-scheduler")
    assert r.rc != 0, r.out
    assert_one_line_why(r, "[pipeline] sinks: unknown ['snowflake']")


@pytest.mark.parametrize(
    ("section", "why"),
    [
        ({"lake": {"orphan_age": -1.0}}, "[lake] orphan_age = -1: at least 60 s"),
        ({"source": {"read_timeout": 0.0}}, "[source] read_timeout = 0: must be above 0"),
    ],
)
def test_settings_that_cannot_work_give_one_line(env: PipelineEnv, section, why):
    env.configure(**section)
    r = luigi(env, "DownloadMonth", "--year", "2021", "--month", "1", "--local-scheduler")
    assert r.rc != 0, r.out
    assert r.seconds < 5 + STARTUP
    assert_one_line_why(r, why)


def test_every_task_parameter_is_described_in_help(env: PipelineEnv):
    import luigi as luigi_module

    import pipeline

    tasks = [getattr(pipeline, n) for n in pipeline.__all__ if n[0].isupper()]
    for task in tasks:
        name = task.__name__
        for pname, param in task.get_params():
            assert param.description, f"{name} --{pname} has no description"
    r = luigi(env, "Backfill", "--help")
    assert "comma list, e.g. yellow,green" in r.out
    assert isinstance(luigi_module.Task, type)


# --- tlc-forget ---------------------------------------------------------------------------------
def test_forget_month_13_is_one_line(env: PipelineEnv):
    r = run([FORGET, "--year", "2021", "--month", "13"], env.env())
    assert r.rc == 2, r.out
    assert r.out.strip() == "tlc-forget: error: month must be 1..12, got 13"


def test_forget_defaults_to_the_load_and_asks_before_raw(env: PipelineEnv, tlc: Path):
    from pipeline.orchestration.tasks import LoadDuckDB

    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    assert env.build(LoadDuckDB(color="green", year=2021, month=1))
    raw = env.lake / "raw/green/green_tripdata_2021-01.parquet.manifest.json"  # its marker
    base = [FORGET, "--color", "green", "--year", "2021", "--month", "1"]

    dry = run([*base, "--from", "raw", "--dry-run"], env.env())
    assert dry.rc == 0
    assert "would remove" in dry.out
    assert str(raw) in dry.out
    assert raw.exists()
    assert LoadDuckDB(color="green", year=2021, month=1).complete()

    declined = subprocess.run(
        [*base, "--from", "raw"], env=env.env(), cwd=REPO, input="n\n", capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert declined.returncode == 3, declined.stdout + declined.stderr
    assert raw.exists()

    default = run(base, env.env())  # --from load: the raw and clean files stay
    assert default.rc == 0
    assert "load ledger row green 2021-01" in default.out
    assert raw.exists()
    assert (env.lake / "clean/green/year=2021/month=01/_quality.json").exists()
    assert not LoadDuckDB(color="green", year=2021, month=1).complete()


# --- notifications ------------------------------------------------------------------------------
def test_one_webhook_post_per_failed_task(env: PipelineEnv, tlc: Path, luigid: Luigid):
    with webhook() as hook:
        env.configure(pipeline={"webhook_url": hook.url, "sinks": ["duckdb"]})
        publish_bad_month(env, tlc)
        use_scheduler(env, luigid)
        r = luigi(env, "IngestMonth", "--year", "2022", "--month", "1")
        assert r.rc == RETCODE["task_failed"], r.out[-3000:]
    assert [m["task"] for m in hook.received] == ["DownloadMonth"]
    assert hook.received[0]["error"].startswith("BadSourceFile: ")


@pytest.mark.parametrize("down", ["webhook", "smtp"])
def test_notification_server_down_leaves_result_and_exit_code_alone(
    env: PipelineEnv, tlc: Path, down: str, refused_port: RefusedPorts
):
    dead = refused_port()
    if down == "webhook":
        env.configure(pipeline={"webhook_url": f"http://127.0.0.1:{dead}/hook"})
    else:
        env.configure(
            email={"receiver": "ops@example.org", "force_send": True},
            smtp={"host": "127.0.0.1", "port": dead},
        )
    publish_bad_month(env, tlc)
    r = luigi(env, "DownloadMonth", "--year", "2022", "--month", "1", "--local-scheduler")
    assert r.rc == RETCODE["task_failed"], r.out[-3000:]
    assert r.seconds < 20 + STARTUP
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    ok = luigi(env, "DownloadMonth", "--color", "green", "--year", "2021", "--month", "1",
               "--local-scheduler")  # fmt: skip
    assert ok.rc == 0, ok.out[-3000:]


def test_postgres_unreachable_at_scheduling_fails_within_bound(
    env: PipelineEnv, refused_port: RefusedPorts
):
    env.configure(
        pipeline={"sinks": ["postgres"]},
        postgres={"host": "127.0.0.1", "port": refused_port(), "connect_timeout": 5},
    )
    clean = {k: v for k, v in env.env().items() if not k.startswith("PG")}  # the config's server
    r = run([LUIGI, "--module", "pipeline", "IngestMonth", "--year", "2021", "--month", "1",
             "--local-scheduler"], clean)  # fmt: skip
    assert r.rc == RETCODE["scheduling_error"], r.out[-3000:]
    assert r.seconds < 10 + STARTUP
    assert_one_line_why(r, 'cannot connect: connection to server at "127.0.0.1"')
