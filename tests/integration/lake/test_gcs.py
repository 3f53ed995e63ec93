"""The lake on GCS (``[lake] root = "gs://..."``) against fake-gcs-server with the official
client: the chunked writer, create-only markers, the publication race, orphans of killed
writers, and LoadBigQuery straight from the lake's objects. The task tests in
tests/integration/orchestration/test_tasks.py run on this lake as well (``lake_env``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from google.cloud import storage

from pipeline.domain.errors import LakeDataMissing, PipelineError
from pipeline.domain.months import MonthKey
from pipeline.extract.download import RetryPolicy, download
from pipeline.lake import gcs as gcsmod
from pipeline.lake import local as localmod
from pipeline.lake.gcs import GcsStore
from pipeline.lake.lake import Lake, split_ext
from pipeline.orchestration import config
from pipeline.orchestration.tasks import CleanParquet, LoadBigQuery, UploadGCS
from pipeline.util import gcp_retry
from pipeline.util.failpoints import DIR_ENV, ENV
from tests.support.data import expected_from_pandas, sample_report
from tests.support.fault_proxy import FaultProxy
from tests.support.fixtures import REPO, PipelineEnv
from tests.support.gcp_emulators import PROJECT, FakeGCS
from tests.support.tlc_server import TLCServer

pytestmark = pytest.mark.gcp
KEY = MonthKey("green", 2021, 1)
MONTH = {"color": "green", "year": 2021, "month": 1}
LUIGI = str(Path(sys.executable).parent / "luigi")


@pytest.fixture
def store(gcs_bucket: str) -> GcsStore:
    return GcsStore(gcs_bucket, "lake", PROJECT)


def names(store: GcsStore, prefix: str = "") -> list[str]:
    return sorted(i.name for i in store.list_objects(prefix))


def test_a_large_object_goes_up_in_pieces_and_is_composed_whole(store: GcsStore):
    data = os.urandom(3 * gcsmod.CHUNK + 12345)  # 3 full pieces and a short one
    with store.writer("raw/big.bin") as out:
        for i in range(0, len(data), 1 << 20):
            out.write(data[i : i + (1 << 20)])
    assert store.read_bytes("raw/big.bin") == data
    assert names(store) == ["raw/big.bin"], "the pieces are deleted once composed"
    blob = store.bucket.get_blob(store.key("raw/big.bin"))
    assert blob is not None
    assert blob.crc32c == out.crc32c
    assert blob.size == len(data)
    assert blob.content_type == "application/octet-stream"


def test_more_pieces_than_one_compose_takes(store: GcsStore, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(gcsmod, "CHUNK", 256 << 10)  # GCS's smallest piece: 70 pieces
    data = os.urandom(70 * (256 << 10) + 1)
    with store.writer("clean/x.parquet") as out:
        out.write(data)
    assert store.read_bytes("clean/x.parquet") == data
    assert names(store) == ["clean/x.parquet"]


def test_a_failed_write_leaves_nothing_behind(store: GcsStore):
    def broken_source() -> None:
        with store.writer("raw/half.bin") as out:
            out.write(os.urandom(2 * gcsmod.CHUNK + 1))  # two pieces are up already
            raise ConnectionResetError("the source broke")

    with pytest.raises(ConnectionResetError):
        broken_source()
    assert names(store) == []


def _read_many(q: Any, store: GcsStore, n: int) -> None:
    wrong: list[str] = []
    try:
        for _ in range(3):
            for i in range(n):
                got = store.read_bytes(f"obj/{i:03d}")
                if got != _content(i):
                    wrong.append(f"obj/{i:03d}: {got[:20]!r}")
    except Exception as e:  # reported by the test
        wrong.append(repr(e))
    q.put(wrong)


def _content(i: int) -> bytes:
    return f"object {i};".encode() * 50


def test_forked_task_processes_each_read_their_own_objects(store: GcsStore):
    """Luigi runs each task of a ``--workers N`` run in a forked process, after the parent has
    used the client for its complete() checks. Children that inherited the parent's client
    shared its keep-alive connection: against the emulator, about one read in five came back
    with another object's bytes (and some waited out a 60 s read timeout). Each process
    must make its own client (pipeline/util/per_process.py)."""
    n = 40
    for i in range(n):
        assert store.create_only(f"obj/{i:03d}", _content(i), {})
    assert store.read_bytes("obj/000") == _content(0)  # the parent's connection, kept alive
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    children = [ctx.Process(target=_read_many, args=(q, store, n)) for _ in range(3)]
    for c in children:
        c.start()
    try:
        wrong = [q.get(timeout=120) for _ in children]
    finally:
        for c in children:
            c.join(timeout=10)
            if c.is_alive():
                c.kill()
    assert wrong == [[], [], []]


@pytest.fixture
def proxied(gcs_bucket: str, fake_gcs: FakeGCS, monkeypatch: pytest.MonkeyPatch):
    """The lake's bucket reached through a fault proxy (tests/support/fault_proxy.py)."""
    with FaultProxy(fake_gcs.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        gcsmod.storage_client.cache_clear()
        gcsmod.arrow_filesystem.cache_clear()
        yield proxy, GcsStore(gcs_bucket, "lake", PROJECT)
    gcsmod.storage_client.cache_clear()
    gcsmod.arrow_filesystem.cache_clear()


def test_a_bucket_that_stops_answering_is_one_error_about_the_bucket(
    proxied: tuple[FaultProxy, GcsStore], server: TLCServer, tlc: Path
):
    """The bucket drops every connection while a download streams into it. When the client's
    retries are spent (gcp_retry.ATTEMPTS requests), the error is one line naming the
    object, not requests' ConnectionError with a traceback; and it is not blamed on the TLC
    source (a "connection broke" there would download the month again): the source was read
    once. Nothing is published and no piece is left."""
    proxy, store = proxied
    url = server.publish_month("green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet",
                               "parquet")  # fmt: skip
    lake = Lake(store)
    raw_name = lake.raw_name(KEY, "parquet")
    proxy.fail("POST", r"^/upload/storage/v1/b/[^/]+/o$", 0, times=gcp_retry.ATTEMPTS)
    with pytest.raises(PipelineError) as err:
        download(url, lake, raw_name, "parquet", policy=RetryPolicy(attempts=3, backoff=0.01))
    message = str(err.value)
    assert type(err.value) is PipelineError, repr(err.value)  # not TransientSourceError
    assert message.startswith(f"GCS upload of gs://{store.bucket_name}/lake/raw/green/")
    assert "ConnectionError" in message
    assert "\n" not in message
    assert proxy.unused() == []
    assert [r.status for r in proxy.requests("POST")][: gcp_retry.ATTEMPTS] == [
        0
    ] * gcp_retry.ATTEMPTS
    assert server.count("green_tripdata_2021-01.parquet") == 1, "the source was read once"
    assert lake.raw(raw_name) is None
    assert names(store) == []


def test_create_only_creates_once_and_keeps_metadata(store: GcsStore):
    assert store.create_only("m/_quality.json", b"first", {"tlc-rows-out": "7"})
    assert not store.create_only("m/_quality.json", b"second", {})
    assert store.read_bytes("m/_quality.json") == b"first"
    (info,) = store.list_objects("m/")
    assert info.metadata == {"tlc-rows-out": "7"}


def test_two_workers_publishing_one_month_at_once_make_one_month(store: GcsStore):
    lake = Lake(store)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def clean_and_publish(body: bytes) -> None:
        part = lake.new_clean_object(KEY)
        with lake.writer(part) as out:
            out.write(body)
        report = sample_report()
        report["files"][0] = {"name": part.rsplit("/", 1)[1], "rows": 1, "bytes": out.size,
                              "sha256": out.sha256, "crc32c": out.crc32c}  # fmt: skip
        barrier.wait()
        results.append(lake.publish_clean(KEY, report))

    threads = [threading.Thread(target=clean_and_publish, args=(b,)) for b in (b"a", b"b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert results[0] == results[1], "both workers go on with the one published month"
    standing = lake.read_quality(KEY)
    assert results[0] == standing
    assert names(store, "clean/") == sorted(
        [lake.quality_name(KEY), *lake.clean_files(KEY, standing)]
    ), "the loser's part is gone"


def test_publishing_sweeps_orphans_of_dead_and_old_writers(store: GcsStore):
    lake = Lake(store)
    raw_name = lake.raw_name(KEY, "parquet")
    stem, ext = split_ext(raw_name)
    dead_pid = int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, check=True).stdout
    )  # fmt: skip
    host = localmod._HOST
    dead = f"{stem}.{host}-{dead_pid}-0000dead{ext}"
    other_host = f"{stem}.otherhost-1-00000001{ext}"
    dead_piece = f"raw/green/.green_tripdata_2021-01.x.parquet.tmp-{host}-{dead_pid}-deadbeef.00000"
    for name in (dead, other_host, dead_piece):
        store.bucket.blob(store.key(name)).upload_from_string(b"x")
    mine = lake.new_raw_object(raw_name)
    with lake.writer(mine) as out:
        out.write(b"mine")
    lake.publish_raw(raw_name, mine, {"sha256": "m"})
    left = names(store, "raw/")
    assert dead not in left
    assert dead_piece not in left
    assert other_host in left, "another host's recent data may be a live writer's"

    lake.orphan_age = lake.orphan_age * 0  # now it is old enough
    lake._sweep_raw(raw_name, keep=mine)
    assert names(store, "raw/") == sorted([mine, lake.manifest_name(raw_name)])


def test_backfill_reads_the_months_digests_from_one_listing(store: GcsStore):
    lake = Lake(store)
    report = sample_report()
    lake.publish_clean(KEY, report)
    (info,) = store.list_objects("clean/green/")
    assert info.metadata["tlc-rows-out"] == str(report["rows_out"])
    digests = lake.quality_digests([KEY, MonthKey("green", 2021, 2)])
    assert list(digests) == [KEY]
    assert digests[KEY].rows_out == report["rows_out"]


# --- the pipeline on a gs:// lake --------------------------------------------------------------
@pytest.fixture
def gcs_lake_env(env: PipelineEnv, gcs_bucket: str, local_bigquery, bq_dataset: str) -> PipelineEnv:
    """The lake on GCS, BigQuery on the emulator, and no [gcs] copy bucket at all."""
    env.configure(
        lake={"root": f"gs://{gcs_bucket}/lake"},
        gcs={"project": PROJECT},
        bigquery={"project": local_bigquery.project, "dataset": bq_dataset, "location": "US",
                  "api_endpoint": local_bigquery.endpoint},
    )  # fmt: skip
    return env


def test_load_bigquery_reads_the_lakes_own_objects(gcs_lake_env: PipelineEnv, tlc: Path):
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    gcs_lake_env.server.publish_month("green", 2021, 1, src, "parquet")
    assert gcs_lake_env.build(LoadBigQuery(**MONTH))
    want = expected_from_pandas(src, 2021, 1)["rows_out"]
    wh = config.bigquery().get()
    assert wh.loaded(KEY).rows_out == want
    sql = f"SELECT COUNT(*) AS n FROM {wh.sql_name('green_trips')}"
    assert next(iter(wh.client.query(sql).result()))["n"] == want
    assert UploadGCS(**MONTH).complete(), "nothing to copy: the lake is the copy"
    the_lake = gcs_lake_env.the_lake()
    objects = set(gcs_lake_env.lake_objects())
    assert set(the_lake.clean_files(KEY, the_lake.read_quality(KEY))) <= objects
    assert all(not n.startswith("tlc/") for n in objects), "no UploadGCS copy was made"


def test_load_bigquery_of_a_part_removed_by_hand_runs_no_job(gcs_lake_env: PipelineEnv, tlc: Path):
    """A BigQuery load job of a missing object would fail inside the job ("Not found: URI"),
    after a stage table was made; the month's own check names the objects and the fix."""
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    gcs_lake_env.server.publish_month("green", 2021, 1, src, "parquet")
    assert gcs_lake_env.build(CleanParquet(**MONTH))
    the_lake = gcs_lake_env.the_lake()
    (part,) = the_lake.clean_files(KEY, the_lake.read_quality(KEY))
    the_lake.store.delete([part])
    wh = config.bigquery().get()
    jobs_before = {j.job_id for j in wh.client.list_jobs()}

    assert not gcs_lake_env.build(LoadBigQuery(**MONTH))
    ((task, error),) = gcs_lake_env.failures
    assert task.task_family == "LoadBigQuery"
    assert isinstance(error, LakeDataMissing)
    assert the_lake.uri(part) in str(error)
    assert "--from clean" in str(error)
    assert wh.loaded(KEY) is None
    loads = {j.job_id for j in wh.client.list_jobs()} - jobs_before
    assert not [j for j in loads if "green_202101" in j], loads


def test_kill_9_mid_download_into_gcs_leaves_no_month_and_the_rerun_sweeps(
    env: PipelineEnv, gcs_bucket: str, tmp_path: Path
):
    from tools.synthetic import write_yellow_month

    env.configure(lake={"root": f"gs://{gcs_bucket}/lake"})
    src = write_yellow_month(tmp_path / "src.parquet", 1_500_000, seed=4)  # > 2 pieces
    assert src.stat().st_size > 2 * gcsmod.CHUNK
    env.server.publish_month("yellow", 2021, 1, src, "parquet")
    failpoints = tmp_path / "failpoints"
    failpoints.mkdir()
    # the 20th MiB of the body: two 8 MiB pieces are up, the object is not composed
    proc = subprocess.Popen(
        [LUIGI, "--module", "pipeline", "CleanParquet", "--year", "2021", "--month", "1",
         "--local-scheduler"],
        env={**env.env(), ENV: "download.streaming@20", DIR_ENV: str(failpoints)},
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(failpoints.glob("download.streaming.*")):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the failpoint was not reached"
        time.sleep(0.02)
    # the first piece is up (its upload runs on while the main thread waits at the point)
    while not [n for n in env.lake_objects() if ".tmp-" in n]:
        assert time.monotonic() < deadline, "no upload piece appeared"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert [n for n in env.lake_objects() if ".tmp-" in n], "the killed writer left pieces"
    assert not CleanParquet(year=2021, month=1).complete()
    the_lake = env.the_lake()
    assert the_lake.raw(the_lake.raw_name(MonthKey("yellow", 2021, 1), "parquet")) is None

    rerun = subprocess.run(
        [LUIGI, "--module", "pipeline", "CleanParquet", "--year", "2021", "--month", "1",
         "--local-scheduler"],
        env=env.env(), cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    left = env.lake_objects()
    assert not [n for n in left if ".tmp-" in n], "the dead writer's pieces are swept"
    raw = the_lake.raw(the_lake.raw_name(MonthKey("yellow", 2021, 1), "parquet"))
    assert raw is not None
    assert (
        storage.Client(project=PROJECT).bucket(gcs_bucket).get_blob(f"lake/{raw.name}").size
        == src.stat().st_size
    )
