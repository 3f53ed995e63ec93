"""Orchestration against a real luigid: backfills, exit codes, retries, notifications, and
three workers sharing one scheduler and one lake."""

from __future__ import annotations

import contextlib
import email
import json
import logging
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.support.fixtures import REPO, PipelineEnv, _to_toml
from tests.support.luigid import Luigid
from tests.support.tlc_server import Fault
from tests.support.webhook import webhook
from tools.synthetic import write_yellow_month

LUIGI = str(Path(sys.executable).parent / "luigi")
RETCODE = {"missing_data": 20, "task_failed": 30, "scheduling_error": 35}


def run_luigi(env: PipelineEnv, luigid: Luigid, *args: str, timeout: float = 300):
    # Where this test's luigid listens: the only [core] setting the test changes.
    env.configure(core={"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port})
    return subprocess.run(
        [LUIGI, "--module", "pipeline", *args],
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def yellow_months(env: PipelineEnv, months: list[tuple[int, int]], rows: int = 3000) -> None:
    for y, m in months:
        src = write_yellow_month(env.root / "src" / f"y{y}{m:02d}.parquet", rows, y, m, seed=m)
        env.server.publish_month("yellow", y, m, src, "parquet")


def publish_bad_month(env: PipelineEnv, tlc: Path) -> None:
    """yellow 2022-01 served as the real CloudFront HTML error page saved as .parquet."""
    bad = tlc / "bad" / "yellow_tripdata_2022-01.html-error-page.parquet"
    env.server.publish_month("yellow", 2022, 1, bad, "parquet")


# --- backfill and exit codes against luigid ------------------------------------------------
def test_backfill_runs_what_is_missing_and_reports_unpublished_months(
    env: PipelineEnv, luigid: Luigid
):
    yellow_months(env, [(2021, 1), (2021, 2)])  # 2021-03 is "not published yet"
    args = ["Backfill", "--colors", "yellow", "--start", "2021-01", "--end", "2021-03"]
    first = run_luigi(env, luigid, *args)
    assert first.returncode == RETCODE["missing_data"], first.stderr[-3000:]
    out = first.stdout + first.stderr
    assert "MonthPublished(color=yellow, year=2021, month=3)" in out
    assert "were missing external dependencies" in out
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        months = con.execute(
            "SELECT month FROM _pipeline_loads WHERE color = 'yellow' ORDER BY 1"
        ).fetchall()
    assert months == [(1,), (2,)]
    assert luigid.tasks("DONE")  # the central scheduler saw the work

    # A rerun once March is out: only March is scheduled and loaded.
    yellow_months(env, [(2021, 3)])
    gets_before = list(env.server.requests)
    second = run_luigi(env, luigid, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    new = env.server.requests[len(gets_before) :]
    assert [r for r in new if "tripdata" in r] == ["/trip-data/yellow_tripdata_2021-03.parquet"]


def test_exit_code_for_a_failed_task(env: PipelineEnv, luigid: Luigid, tlc: Path):
    publish_bad_month(env, tlc)
    run = run_luigi(env, luigid, "IngestMonth", "--year", "2022", "--month", "1")
    assert run.returncode == RETCODE["task_failed"], run.stderr[-3000:]
    assert "BadSourceFile" in run.stdout + run.stderr


def test_exit_code_for_a_scheduling_failure(env: PipelineEnv, luigid: Luigid):
    env.configure(pipeline={"sinks": ["nowhere"]})
    run = run_luigi(env, luigid, "IngestMonth", "--year", "2021", "--month", "1")
    assert run.returncode == RETCODE["scheduling_error"], run.stderr[-3000:]
    assert "unknown ['nowhere']" in run.stdout + run.stderr


def test_transient_fault_is_retried_inside_the_task_in_one_run(env: PipelineEnv, luigid: Luigid):
    yellow_months(env, [(2021, 1)])
    env.server.fail("/trip-data/yellow_tripdata_2021-01.parquet", Fault("status", 503))
    ok = run_luigi(env, luigid, "DownloadMonth", "--year", "2021", "--month", "1")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert env.server.count("yellow_tripdata_2021-01") == 2  # failed once, retried, done
    assert "attempt 1/3 failed, retrying in" in ok.stderr  # one WARNING line, no traceback
    assert "Traceback" not in ok.stderr
    assert "DownloadMonth" in [t["name"] for t in luigid.tasks("DONE").values()]


# --- notifications --------------------------------------------------------------------------
def test_failure_sends_email_and_webhook_without_secrets(
    env: PipelineEnv, luigid: Luigid, tlc: Path
):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink as _  # noqa: F401  (import check)

    mails: list[bytes] = []
    stack = contextlib.ExitStack()

    class Collect:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            mails.append(envelope.content)
            return "250 OK"

    from tests.support.tlc_server import free_port

    smtp = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    secret = "hunter2-Secret-pw"
    try:
        hook = stack.enter_context(webhook())
        env.configure(
            email={"receiver": "ops@example.org", "force_send": True, "sender": "tlc@localhost"},
            smtp={"host": "127.0.0.1", "port": smtp.port},
            pipeline={"webhook_url": hook.url},
            postgres={"password": secret},
            source={
                # a signed-URL-like template: its token must not reach any message
                "parquet_url": env.server.parquet_template + f"?token={secret}",
            },
        )
        publish_bad_month(env, tlc)
        run = run_luigi(env, luigid, "DownloadMonth", "--year", "2022", "--month", "1")
        assert run.returncode == RETCODE["task_failed"], run.stderr[-3000:]
    finally:
        smtp.stop()
        stack.close()

    assert len(hook.received) == 1
    msg = hook.received[0]
    assert msg["task"] == "DownloadMonth"
    assert msg["color"] == "yellow"
    assert msg["month"] == "2022-01"
    assert "BadSourceFile" in msg["error"]
    assert "DownloadMonth" in msg["text"]
    assert secret not in json.dumps(msg)

    assert len(mails) == 1
    mail = email.message_from_bytes(mails[0])
    body = "".join(
        part.get_payload(decode=True).decode(errors="replace")
        for part in mail.walk()
        if part.get_content_maintype() == "text"
    )
    assert "DownloadMonth" in mail["Subject"] + body
    assert "2022" in body
    assert "BadSourceFile" in body
    assert secret not in body + mail["Subject"]


def test_a_webhook_that_fails_never_logs_its_secret(
    env: PipelineEnv, caplog: pytest.LogCaptureFixture
):
    """A Slack-style webhook URL carries its secret in the path; requests quotes the whole URL
    in its error ("404 Client Error: Not Found for url: …")."""
    from pipeline.domain.errors import BadSourceFile
    from pipeline.orchestration import notify
    from pipeline.orchestration.tasks import DownloadMonth

    secret = "XyZ-webhook-Secret-4711"
    with webhook(status=404) as hook:
        base = hook.url.rsplit("/", 1)[0]
        env.configure(pipeline={"webhook_url": f"{base}/services/T0001/B0001/{secret}"})
        with caplog.at_level(logging.WARNING, logger="pipeline.orchestration.notify"):
            notify.post_failure(DownloadMonth(year=2021, month=1), BadSourceFile("x.parquet"))
    assert len(hook.received) == 1, "the failure was posted (and answered 404)"
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"failure webhook {base}/…: 404 Client Error"), line
    assert secret not in caplog.text
    assert "T0001" not in caplog.text


# --- three workers, one scheduler, one lake --------------------------------------------------
def test_three_workers_share_one_backfill_and_run_each_task_once(
    env: PipelineEnv, luigid: Luigid, pg_database
):
    months = [(2021, m) for m in range(1, 7)]
    yellow_months(env, months)
    env.configure(
        core={"scheduler_host": "127.0.0.1", "scheduler_port": luigid.port},
        pipeline={"sinks": ["duckdb", "postgres"]},
        postgres={
            "host": pg_database.host,
            "port": pg_database.port,
            "database": pg_database.database,
            "user": pg_database.user,
            "schema": f"workers_{luigid.port}",
        },
    )
    args = ["Backfill", "--colors", "yellow", "--start", "2021-01", "--end", "2021-06"]
    procs = [
        subprocess.Popen(
            [LUIGI, "--module", "pipeline", *args, "--no-lock", "--log-level", "INFO"],
            env=env.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs[0][-3000:]

    # Each task ran in exactly one worker: count the workers' own "done" lines.
    for y, m in months:
        for family in ("DownloadMonth", "CleanParquet", "LoadDuckDB", "LoadPostgres"):
            task = f"{family}(color=yellow, year={y}, month={m})"
            ran = sum(o.count(f"done      {task}") for o in outs)
            assert ran == 1, f"{task} ran {ran} times"
        assert env.server.count(f"yellow_tripdata_{y}-{m:02d}") == 1  # one download
    # and every count is exact, once
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        per_month = dict(
            con.execute(
                "SELECT month(pickup_datetime), count(*) FROM yellow_trips GROUP BY 1"
            ).fetchall()
        )
        markers = con.execute("SELECT month, rows_out FROM _pipeline_loads WHERE color='yellow'")
        marker_rows = dict(markers.fetchall())
    assert per_month == marker_rows
    assert sorted(per_month) == [m for _, m in months]
    conn = pg_database.connect()
    cur = conn.cursor()
    cur.execute(
        f'SELECT extract(month FROM pickup_datetime)::int, count(*) FROM "workers_{luigid.port}"'
        ".yellow_trips GROUP BY 1"
    )
    assert dict(cur.fetchall()) == per_month
    cur.execute(f'DROP SCHEMA "workers_{luigid.port}" CASCADE')
    conn.commit()
    conn.close()


# --- task history in PostgreSQL -------------------------------------------------------------
@pytest.mark.luigid  # starts its own luigid, with a history database
def test_luigid_records_task_history_in_postgres(env: PipelineEnv, tmp_path: Path, pg_database):
    """luigi 3.8.1's db_task_history works with SQLAlchemy 2 on PostgreSQL (the reported
    crashes, luigi#3227/#3320, are SQLite ones). No password in the URL: libpq's PGPASSWORD
    or ~/.pgpass supply it."""
    import urllib.request

    c = pg_database
    cfg = tmp_path / "history.toml"
    cfg.write_text(
        _to_toml(
            {
                "scheduler": {"record_task_history": True},
                "task_history": {
                    "db_connection": f"postgresql+psycopg2://{c.user}@{c.host}:{c.port}/{c.database}"
                },
            }
        )
    )
    d = Luigid(tmp_path / "luigid-history", config=cfg)
    try:
        yellow_months(env, [(2021, 1)])
        run = run_luigi(env, d, "DownloadMonth", "--year", "2021", "--month", "1")
        assert run.returncode == 0, run.stderr[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/history", timeout=10) as r:
            assert r.status == 200
            assert "DownloadMonth" in r.read().decode()
    finally:
        d.stop()
    conn = pg_database.connect()
    cur = conn.cursor()
    cur.execute(
        "SELECT t.name, array_agg(e.event_name ORDER BY e.ts) FROM tasks t"
        " JOIN task_events e ON e.task_id = t.id WHERE t.name = 'DownloadMonth' GROUP BY 1"
    )
    [(_, events)] = cur.fetchall()
    assert events[-1] == "DONE"
    assert "RUNNING" in events
    cur.execute(
        "SELECT p.name, p.value FROM task_parameters p JOIN tasks t ON t.id = p.task_id"
        " WHERE t.name = 'DownloadMonth' ORDER BY 1"
    )
    assert cur.fetchall() == [("color", "yellow"), ("month", "1"), ("year", "2021")]
    for table in ("task_parameters", "task_events", "tasks"):
        cur.execute(f"DROP TABLE {table} CASCADE")
    conn.commit()
    conn.close()
