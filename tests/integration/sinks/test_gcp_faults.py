"""Transient GCS and BigQuery faults (500, 503, 429; backendError, rateLimitExceeded): retried,
exact, never loaded twice. And faults that are not transient: one clear error, nothing replaced.

The official clients talk to the emulators through tests/support/fault_proxy.py, which answers
errors in Google's format before forwarding a request (it never reached the service) or after
(the service did the work and the answer was lost), and makes BigQuery jobs end DONE with an
errorResult. The month is the real green 2021-01, served by the local TLC server. Checks are
made on the emulators directly, not through the proxy. What still cannot be shown locally is
listed in docs/gcp.md.
"""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud import bigquery

from pipeline.domain import quality
from pipeline.domain.errors import PipelineError
from pipeline.domain.months import MonthKey
from pipeline.domain.quality import CleanFile, QualityReport
from pipeline.lake import local as lake
from pipeline.lake.gcs import storage_client
from pipeline.lake.gcs_copy import GcsCopy
from pipeline.orchestration import config
from pipeline.orchestration.tasks import LoadBigQuery, UploadGCS
from pipeline.sinks.bigquery import bigquery_client
from pipeline.sinks.bigquery import jobs as bq_jobs
from pipeline.sinks.bigquery.jobs import MAX_ATTEMPTS
from pipeline.util import gcp_retry
from tests.support.data import expected_from_pandas
from tests.support.fault_proxy import JOBS_INSERT, FaultProxy
from tests.support.fixtures import TLC, PipelineEnv
from tests.support.gcp_emulators import PROJECT, FakeGCS, LocalBigQuery

pytestmark = pytest.mark.gcp

SOURCE = TLC / "months" / "green_tripdata_2021-01.parquet"
MONTH = {"color": "green", "year": 2021, "month": 1}
KEY = MonthKey(**MONTH)
PREFIX = "lake/tlc"

# GCS JSON and upload API paths (what google-cloud-storage sends to STORAGE_EMULATOR_HOST)
UPLOAD = r"^/upload/storage/v1/b/[^/]+/o$"  # multipart and resumable uploads
LIST = r"^/storage/v1/b/[^/]+/o$"  # objects.list
GET = r"^/storage/v1/b/[^/]+/o/.+"  # objects.get (metadata, after each upload)
DOWNLOAD = r"^/download/storage/v1/b/[^/]+/o/.+"  # media download (_quality.json)


@functools.cache
def rows_out() -> int:
    return expected_from_pandas(SOURCE, 2021, 1)["rows_out"]


@dataclass
class Faulty:
    """The pipeline, configured to reach both emulators through a fault proxy each."""

    env: PipelineEnv
    gcs: FaultProxy
    bq: FaultProxy
    fake_gcs: FakeGCS
    bucket: str
    dataset: str
    direct: bigquery.Client  # the emulator itself, for the checks

    def build(self) -> bool:
        return self.env.build(LoadBigQuery(**MONTH))

    def count(self, table: str, where: str = "TRUE") -> int:
        sql = f"SELECT COUNT(*) AS n FROM `{PROJECT}.{self.dataset}.{table}` WHERE {where}"
        return next(iter(self.direct.query(sql).result()))["n"]

    def markers(self) -> list[dict]:
        sql = (
            f"SELECT * FROM `{PROJECT}.{self.dataset}._pipeline_loads`"
            " WHERE color = 'green' AND year = 2021 AND month = 1"
        )
        return [dict(r.items()) for r in self.direct.query(sql).result()]

    def tables(self) -> set[str]:
        return {t.table_id for t in self.direct.list_tables(self.dataset)}

    def month_jobs(self) -> list[str]:
        """Ids of the month's load and swap jobs.insert requests (retries included), but not
        those answered 409: their ids were taken by earlier jobs."""
        return [j for j in self.bq.job_inserts(taken=False) if "_green_202101_" in j]

    def objects(self) -> dict[str, bytes]:
        """The month's objects, as fake-gcs-server stores them (plain files)."""
        folder = self.fake_gcs.root / self.bucket / PREFIX / "clean/green/year=2021/month=01"
        return {p.name: p.read_bytes() for p in folder.glob("*")} if folder.is_dir() else {}

    @property
    def clean_dir(self) -> Path:
        return self.env.lake / "clean" / "green" / "year=2021" / "month=01"

    def assert_landed_once(self) -> dict:
        """The month is in BigQuery exactly once, with one marker and no stage; the bucket
        holds the lake's bytes; and a rerun does nothing: no upload, no job."""
        assert self.gcs.unused() == [], "a GCS fault did not fire"
        assert self.bq.unused() == [], "a BigQuery fault did not fire"
        want = rows_out()
        assert self.env.the_lake().read_quality(KEY)["rows_out"] == want
        assert self.count("green_trips") == want
        assert self.count("green_trips", "pickup_datetime >= DATETIME '2021-01-01'"
                          " AND pickup_datetime < DATETIME '2021-02-01'") == want  # fmt: skip
        markers = self.markers()
        assert len(markers) == 1, markers
        assert markers[0]["rows_out"] == want
        assert not [t for t in self.tables() if t.startswith("_stage_")]
        report = self.env.the_lake().read_quality(KEY)
        assert sorted(self.objects()) == sorted([report["files"][0]["name"], lake.QUALITY_FILE])
        for name, data in self.objects().items():
            assert data == (self.clean_dir / name).read_bytes()

        self.gcs.clear()
        self.bq.clear()
        assert self.build()
        assert self.bq.job_inserts() == []
        assert self.gcs.requests("POST", UPLOAD) == []
        assert self.gcs.requests("PUT", UPLOAD) == []
        assert self.count("green_trips") == want
        assert self.markers() == markers
        return markers[0]


@pytest.fixture
def faulty(
    env: PipelineEnv,
    tlc: Path,
    fake_gcs: FakeGCS,
    local_bigquery: LocalBigQuery,
    gcs_bucket: str,
    bq_dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Faulty]:
    with FaultProxy(fake_gcs.url) as gcs, FaultProxy(local_bigquery.endpoint) as bq:
        # The pipeline makes one client of each per process: drop the ones made for the
        # emulators themselves, and ours when done.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        storage_client.cache_clear()
        bigquery_client.cache_clear()
        env.configure(
            worker={"keep_alive": False},  # one worker: a failed run ends at once
            gcs={"bucket": gcs_bucket, "prefix": PREFIX, "project": PROJECT},
            bigquery={
                "project": PROJECT,
                "dataset": bq_dataset,
                "location": "US",
                "api_endpoint": bq.url,
            },
        )
        env.server.publish_month("green", 2021, 1, SOURCE, "parquet")
        yield Faulty(env, gcs, bq, fake_gcs, gcs_bucket, bq_dataset, local_bigquery.client())
    storage_client.cache_clear()
    bigquery_client.cache_clear()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, logger: str) -> list[str]:
        """The WARNING lines of ``logger``, each one line without a traceback."""
        found = [r for r in self.records if r.name == logger and r.levelno == logging.WARNING]
        for r in found:
            assert r.exc_info is None
            assert "\n" not in r.getMessage()
        return [r.getMessage() for r in found]


@pytest.fixture
def warnings() -> Iterator[Records]:
    """What the pipeline's loggers warn about. On the "pipeline" logger, not the root (caplog):
    Luigi's first build in a process applies the [logging] config, which replaces the root's
    handlers."""
    handler = Records()
    logger = logging.getLogger("pipeline")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def only_failure(env: PipelineEnv) -> tuple[str, str]:
    """The one task that failed in the last build, and its error (a PipelineError)."""
    assert len(env.failures) == 1, env.failures
    task, exc = env.failures[0]
    assert isinstance(exc, PipelineError), repr(exc)
    assert "\n" not in str(exc)
    return task.task_family, str(exc)


# --- GCS ------------------------------------------------------------------------------------
GCS_FAULTS = {
    "upload-503-before": ("POST", UPLOAD, 503, "before", 2),
    "upload-503-after": ("POST", UPLOAD, 503, "after", 1),
    "upload-429-before": ("POST", UPLOAD, 429, "before", 1),
    "upload-500-after": ("POST", UPLOAD, 500, "after", 2),
    "list-503-before": ("GET", LIST, 503, "before", 2),
    "list-429-after": ("GET", LIST, 429, "after", 1),
    "list-500-before": ("GET", LIST, 500, "before", 1),
    "get-500-after": ("GET", GET, 500, "after", 1),
    "get-503-before": ("GET", GET, 503, "before", 1),
    "download-503-after": ("GET", DOWNLOAD, 503, "after", 1),
    "download-429-before": ("GET", DOWNLOAD, 429, "before", 2),
}


@pytest.mark.parametrize("case", GCS_FAULTS, ids=list(GCS_FAULTS))
def test_transient_gcs_faults_are_retried(faulty: Faulty, warnings: Records, case: str):
    method, path, status, when, times = GCS_FAULTS[case]
    faulty.gcs.fail(method, path, status, when=when, times=times)
    assert faulty.build(), faulty.env.failures

    hits = faulty.gcs.requests(method, path)
    assert [r.status for r in hits[:times]] == [status] * times
    assert hits[times].status in (200, 308), hits  # the retry went through
    lines = warnings.lines("pipeline.lake.gcs_copy")
    assert len(lines) == times, lines
    assert f"attempt {times}/{gcp_retry.ATTEMPTS} failed" in lines[-1]
    assert "green 2021-01" in lines[-1]
    assert str(status) in lines[-1]
    assert sorted({j.rsplit("_", 2)[-2] for j in faulty.month_jobs()}) == ["load", "swap"]
    assert {j.rsplit("_", 1)[-1] for j in faulty.month_jobs()} == {"1"}  # each job ran once
    faulty.assert_landed_once()


def test_resumable_upload_through_the_proxy(faulty: Faulty, tmp_path: Path):
    """Objects over 8 MiB go up in a resumable session: the session URL the emulator hands
    out is rewritten to the proxy, so faults on the session and on each chunk are retried."""
    clean_dir = big_month(tmp_path)
    faulty.gcs.fail("POST", UPLOAD, 503, query="uploadType=resumable")
    faulty.gcs.fail("PUT", UPLOAD, 503, when="before")  # the first chunk
    faulty.gcs.fail("PUT", UPLOAD, 429, when="before")
    gcs = config.gcs().get()
    gcs.upload_month(clean_dir, KEY)
    assert faulty.gcs.unused() == []
    puts = faulty.gcs.requests("PUT", UPLOAD)
    assert [r.status for r in puts] == [503, 429, 308, 308, 200]
    stored = faulty.fake_gcs.root / faulty.bucket / gcs.month_prefix(KEY) / BIG
    assert stored.read_bytes() == (clean_dir / BIG).read_bytes()
    assert gcs.month_complete(clean_dir, KEY)


def test_resent_chunk_that_the_emulator_stored_twice_is_refused(faulty: Faulty, tmp_path: Path):
    """An error AFTER a chunk reached fake-gcs-server: the client sends the chunk again and the
    emulator appends it a second time (GCS itself would keep one copy). The crc32c check is
    what stands between that and a corrupt object: the upload fails, nothing is left, and
    the next upload is exact."""
    clean_dir = big_month(tmp_path)
    faulty.gcs.fail("PUT", UPLOAD, 503, when="after")
    gcs = config.gcs().get()
    with pytest.raises(PipelineError, match="crc32c") as err:
        gcs.upload_month(clean_dir, KEY)
    assert "green 2021-01" in str(err.value)
    assert gcs.remote(KEY) == {}
    gcs.upload_month(clean_dir, KEY)
    assert gcs.month_complete(clean_dir, KEY)


BIG = "part-0.test-1-00000000.parquet"


def big_month(tmp_path: Path) -> Path:
    """A clean month folder whose data object (20 MiB) needs a resumable upload."""
    clean_dir = tmp_path / "big"
    clean_dir.mkdir()
    (clean_dir / BIG).write_bytes(os.urandom(20 << 20))
    data = clean_dir / BIG
    files: list[CleanFile] = [{"name": BIG, "rows": 0, "bytes": 20 << 20,
                               "sha256": "", "crc32c": lake.crc32c_file(data)}]  # fmt: skip
    report: QualityReport = {
        "color": "green", "year": 2021, "month": 1, "source_file": "-", "source_format": "-",
        "source_manifest": None, "column_map": {}, "rows_in": 0, "rows_out": 0,
        "rows_dropped": {}, "rows_repaired": 0, "nulls": {}, "files": files,
        "compression": "none", "code_version": "test", "cleaned_at": "2026-01-01T00:00:00",
    }  # fmt: skip
    (clean_dir / lake.QUALITY_FILE).write_text(quality.dump(report))
    return clean_dir


def test_gcs_permission_error_fails_once_and_uploads_nothing(faulty: Faulty):
    faulty.gcs.fail("POST", UPLOAD, 403, reason="forbidden", times=100)
    assert not faulty.build()
    family, message = only_failure(faulty.env)
    assert family == "UploadGCS"
    assert "green 2021-01" in message
    assert "403" in message
    assert len(faulty.gcs.requests("POST", UPLOAD)) == 1  # not retried
    assert faulty.objects() == {}
    assert faulty.month_jobs() == []
    assert not UploadGCS(**MONTH).complete()
    # once the permission is granted, the next run lands the month
    faulty.gcs.clear()
    assert faulty.build()
    faulty.assert_landed_once()


# --- BigQuery: HTTP errors on jobs.insert -----------------------------------------------------
BQ_HTTP_FAULTS = {
    "load-503-before": ("_load_1$", 503, "before"),
    "load-500-after": ("_load_1$", 500, "after"),
    "swap-500-before": ("_swap_1$", 500, "before"),
    "swap-429-before": ("_swap_1$", 429, "before"),
    "swap-503-after": ("_swap_1$", 503, "after"),  # the swap committed; its answer was lost
}


@pytest.mark.parametrize("case", BQ_HTTP_FAULTS, ids=list(BQ_HTTP_FAULTS))
def test_transient_errors_on_jobs_insert_are_retried(faulty: Faulty, warnings: Records, case: str):
    job, status, when = BQ_HTTP_FAULTS[case]
    faulty.bq.fail("POST", JOBS_INSERT.pattern, status, when=when, job=job)
    assert faulty.build(), faulty.env.failures
    lines = warnings.lines("pipeline.sinks.bigquery.jobs")
    assert len(lines) == 1, lines
    assert f"attempt 1/{gcp_retry.ATTEMPTS} failed" in lines[0]

    # Each job ran once, under attempt number 1: the client sent the same id again, and a
    # job that had already run (409) was resumed, not run a second time.
    jobs = faulty.month_jobs()
    assert sorted(set(jobs)) == sorted({j for j in jobs if j.endswith(("_load_1", "_swap_1"))})
    assert len(set(jobs)) == 2, jobs
    marker = faulty.assert_landed_once()
    assert marker["load_id"].endswith("_swap_1")  # the swap job that wrote the ledger row


def test_jobs_insert_that_never_gets_an_answer_runs_the_job_once(faulty: Faulty, warnings: Records):
    """The swap's jobs.insert gets no answer at all (the connection drops) until the client's
    retries are spent. Whether the job was made is unknown, as after a 503: it is looked up,
    is not there, and runs once under the next id. Before, requests' ConnectionError escaped
    with a traceback."""
    faulty.bq.fail("POST", JOBS_INSERT.pattern, 0, job="_swap_1$", times=gcp_retry.ATTEMPTS)
    assert faulty.build(), faulty.env.failures
    lines = warnings.lines("pipeline.sinks.bigquery.jobs")
    assert len(lines) == gcp_retry.ATTEMPTS, lines  # the client's retries, then the job's
    assert f"attempt 1/{MAX_ATTEMPTS} failed" in lines[-1]
    assert "ConnectionError" in lines[-1]
    jobs = faulty.month_jobs()
    assert [j for j in jobs if "_swap_" in j][-1].endswith("_swap_2")
    marker = faulty.assert_landed_once()
    assert marker["load_id"].endswith("_swap_2")


# --- BigQuery: jobs that end DONE with a transient errorResult --------------------------------
BQ_JOB_FAULTS = {
    "load-backendError": ("load", "backendError", "before"),
    "load-rateLimitExceeded-after-running": ("load", "rateLimitExceeded", "after"),
    "swap-rateLimitExceeded": ("swap", "rateLimitExceeded", "before"),
    "swap-backendError-after-running": ("swap", "backendError", "after"),
    # Real BigQuery cancels one of two transactions that change one table at once (two hosts'
    # swaps both write the ledger); the emulator runs them one after the other, so the proxy
    # answers with BigQuery's own words.
    "swap-cancelled-by-a-concurrent-update": ("swap", "invalidQuery", "before"),
}
BQ_JOB_MESSAGES = {
    "swap-cancelled-by-a-concurrent-update": (
        "Transaction is aborted due to concurrent update against table "
        "test-project:tlc._pipeline_loads. Transaction ID: 6a1f0c2e-0000-2f1b-9b1e-001a11443a2c"
    ),
}


@pytest.mark.parametrize("case", BQ_JOB_FAULTS, ids=list(BQ_JOB_FAULTS))
def test_jobs_that_fail_transiently_are_run_again(faulty: Faulty, warnings: Records, case: str):
    kind, reason, when = BQ_JOB_FAULTS[case]
    message = {"message": BQ_JOB_MESSAGES[case]} if case in BQ_JOB_MESSAGES else {}
    faulty.bq.fail_job(reason, job=f"_{kind}_1$", when=when, **message)
    assert faulty.build(), faulty.env.failures

    jobs = faulty.month_jobs()
    assert [j.rsplit("_", 2)[-2:] for j in jobs if f"_{kind}_" in j] == [[kind, "1"], [kind, "2"]]
    lines = warnings.lines("pipeline.sinks.bigquery.jobs")
    assert len(lines) == 1, lines
    assert "green 2021-01" in lines[0]
    assert reason in lines[0]
    assert f"attempt 1/{MAX_ATTEMPTS} failed" in lines[0]
    marker = faulty.assert_landed_once()
    assert marker["load_id"].endswith("_swap_2" if kind == "swap" else "_swap_1")


def test_a_ledger_write_cancelled_by_a_concurrent_update_runs_again(
    faulty: Faulty, warnings: Records
):
    """The zones' ledger row is written by a plain query (no job id of ours), which shares the
    ledger with every host's month swaps: BigQuery may cancel it as it cancels a swap."""
    faulty.bq.fail_job(
        "invalidQuery",
        job=r"^(?!tlc_)",
        body=r"DELETE FROM `[^`]*_pipeline_loads` WHERE kind = \?;",
        message=BQ_JOB_MESSAGES["swap-cancelled-by-a-concurrent-update"],
    )
    assert faulty.build(), faulty.env.failures
    assert faulty.bq.unused() == []
    lines = warnings.lines("pipeline.sinks.bigquery.jobs")
    assert len(lines) == 1, lines
    assert "recording the zones load: attempt 1/" in lines[0]
    assert "due to concurrent update" in lines[0]
    faulty.assert_landed_once()


def test_retries_used_up_then_the_next_run_loads_the_month(faulty: Faulty, monkeypatch):
    """Every attempt of a run failed transiently: the run fails, and the next run (the
    outage over) loads the month, although attempts 1..N of its job ids are taken."""
    # The backoff doubles from 2 s: 30 s of waiting for this test alone. It is the same
    # code path with a shorter wait.
    monkeypatch.setattr(bq_jobs, "RETRY_WAIT", 0.01)
    faulty.bq.fail_job("backendError", job="_load_", times=MAX_ATTEMPTS)
    assert not faulty.build()
    family, message = only_failure(faulty.env)
    assert family == "LoadBigQuery"
    assert "green 2021-01" in message
    assert f"{MAX_ATTEMPTS} attempts" in message
    assert faulty.markers() == []
    assert faulty.count("green_trips") == 0
    assert len(faulty.month_jobs()) == MAX_ATTEMPTS

    faulty.bq.clear()
    assert faulty.build(), faulty.env.failures
    assert any(j.endswith(f"_load_{MAX_ATTEMPTS + 1}") for j in faulty.month_jobs())
    faulty.assert_landed_once()


# --- BigQuery: faults that are not transient ------------------------------------------------
def test_invalid_load_job_fails_once_and_loads_nothing(faulty: Faulty):
    faulty.bq.fail_job("invalid", job="_load_", times=100, message="Error while reading data")
    assert not faulty.build()
    family, message = only_failure(faulty.env)
    assert family == "LoadBigQuery"
    assert "green 2021-01" in message
    assert "Error while reading data" in message
    assert [j.rsplit("_", 1)[-1] for j in faulty.month_jobs()] == ["1"]  # not retried
    assert faulty.markers() == []
    assert faulty.count("green_trips") == 0

    # the cause fixed (the job that failed keeps its id), the next run loads the month
    faulty.bq.clear()
    assert faulty.build(), faulty.env.failures
    faulty.assert_landed_once()


def test_denied_swap_fails_once_and_replaces_nothing(faulty: Faulty):
    assert faulty.build()
    before = faulty.count("green_trips")
    wh = config.bigquery().get()
    assert wh.forget(KEY)  # a reload of the month is asked for
    faulty.bq.clear()
    faulty.bq.fail_job("accessDenied", job="_swap_", times=100, message="Access Denied: Table")
    assert not faulty.build()
    family, message = only_failure(faulty.env)
    assert family == "LoadBigQuery"
    assert "green 2021-01" in message
    assert "swap" in message
    assert "Access Denied" in message
    # swap_1 made the first load; the reload's swap_2 was denied, and not retried
    assert [j[-7:] for j in faulty.month_jobs() if "_swap_" in j] == ["_swap_2"]
    assert faulty.count("green_trips") == before  # the old rows, untouched
    assert faulty.markers() == []

    faulty.bq.clear()
    assert faulty.build(), faulty.env.failures
    assert faulty.assert_landed_once()["load_id"].endswith("_swap_3")


def test_proxy_forwards_chunked_bodies_and_media(faulty: Faulty):
    """The proxy itself: a chunked request body is forwarded whole, and a media download is
    passed through byte for byte."""
    import http.client
    import urllib.parse

    data = os.urandom(3 << 20)
    u = urllib.parse.urlsplit(faulty.gcs.url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request(
        "POST",
        f"/upload/storage/v1/b/{faulty.bucket}/o?uploadType=media&name=chunked.bin",
        body=iter([data[: 1 << 20], data[1 << 20 :]]),
        headers={"Content-Type": "application/octet-stream"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    resp.read()
    got = io.BytesIO()
    storage = GcsCopy(faulty.bucket).client
    storage.bucket(faulty.bucket).blob("chunked.bin").download_to_file(got)
    assert got.getvalue() == data
    conn.close()
