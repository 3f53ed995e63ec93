"""pipeline.extract.download against a real local HTTP server: retries, integrity, bad files,
into a folder lake (tests/integration/lake/test_gcs.py streams into the GCS emulator)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import pytest

from pipeline.domain.errors import (
    BadSourceFile,
    MonthNotPublished,
    PipelineError,
    SourceUnreachable,
    TransientSourceError,
)
from pipeline.extract.download import RetryPolicy, download, is_published
from pipeline.extract.verify import verify_file
from pipeline.lake.lake import RawFile, local
from pipeline.lake.local import LocalStore
from tests.support.data import BAD_FILES
from tests.support.lakes import files_under
from tests.support.tlc_server import Fault, RefusedPorts, TLCServer

FAST = RetryPolicy(attempts=4, backoff=0.01, connect_timeout=2, read_timeout=1)
GREEN_2021_01 = "/trip-data/green_tripdata_2021-01.parquet"


@pytest.fixture
def green(tlc: Path, server: TLCServer) -> tuple[str, Path]:
    src = tlc / "months" / "green_tripdata_2021-01.parquet"
    return server.publish(GREEN_2021_01, src), src


def fetch(url: str, tmp_path: Path, kind: str = "parquet", **kw) -> tuple[RawFile, Path]:
    """Download into the folder lake tmp_path/out as raw/x.{kind}: what stands, and its file."""
    lake = local(tmp_path / "out")
    raw = download(url, lake, f"raw/x.{kind}", kind, **{"policy": FAST, **kw})
    return raw, tmp_path / "out" / raw.name


def only_final_files(folder: Path) -> list[str]:
    """Everything left in ``folder``: temp files must never survive an attempt."""
    return files_under(folder)


def test_download_writes_file_and_manifest(green, tmp_path: Path):
    url, src = green
    raw, dest = fetch(url, tmp_path)
    manifest = raw.manifest
    assert dest.read_bytes() == src.read_bytes()
    on_disk = json.loads((tmp_path / "out/raw/x.parquet.manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert on_disk["bytes"] == src.stat().st_size
    assert on_disk["url"] == url
    assert on_disk["etag"]
    assert on_disk["last_modified"]
    assert manifest["attempts"] == 1
    assert only_final_files(tmp_path / "out") == sorted([raw.name, "raw/x.parquet.manifest.json"])


def test_two_500s_then_success(green, server: TLCServer, tmp_path: Path):
    url, src = green
    server.fail(GREEN_2021_01, Fault("status", 500), Fault("status", 503))
    raw, dest = fetch(url, tmp_path)
    assert raw.manifest["attempts"] == 3
    assert server.count(GREEN_2021_01) == 3
    assert dest.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("kind", ["truncate", "reset", "no_length"])
def test_cut_body_is_retried_and_never_passed_on(kind, green, server: TLCServer, tmp_path):
    url, src = green
    server.fail(GREEN_2021_01, Fault(kind))
    raw, dest = fetch(url, tmp_path)
    assert raw.manifest["attempts"] == 2
    assert dest.read_bytes() == src.read_bytes()


def test_cut_body_every_time_fails_and_leaves_nothing(green, server: TLCServer, tmp_path):
    url, _ = green
    server.fail(GREEN_2021_01, *[Fault("truncate")] * FAST.attempts)
    with pytest.raises(TransientSourceError, match=r"cut short|connection broke"):
        fetch(url, tmp_path)
    assert server.count(GREEN_2021_01) == FAST.attempts
    assert only_final_files(tmp_path / "out") == []


def test_slow_response_times_out_then_succeeds(green, server: TLCServer, tmp_path):
    url, src = green
    server.fail(GREEN_2021_01, Fault("slow", delay=FAST.read_timeout + 1.0))
    raw, dest = fetch(url, tmp_path)
    assert raw.manifest["attempts"] == 2
    assert dest.read_bytes() == src.read_bytes()


def test_a_server_that_trickles_fails_the_attempt_then_the_retry_succeeds(
    green, server: TLCServer, tmp_path
):
    """100 bytes every 0.2 s: never a second without a byte, so read_timeout never trips.
    Under min_rate (10 kB/s, the shipped default) over a read_timeout's window, the attempt
    fails and the next one gets the file."""
    url, src = green
    server.fail(GREEN_2021_01, Fault("trickle", delay=0.2))
    started = time.monotonic()
    raw, dest = fetch(url, tmp_path)
    assert raw.manifest["attempts"] == 2
    assert dest.read_bytes() == src.read_bytes()
    assert time.monotonic() - started < 10


def test_a_server_that_always_trickles_ends_in_bounded_time(server: TLCServer, tmp_path, green):
    url, _ = green
    for _ in range(FAST.attempts):
        server.fail(GREEN_2021_01, Fault("trickle", delay=0.2))
    started = time.monotonic()
    with pytest.raises(TransientSourceError, match=r"too slow: .* bytes/s over the last 1 s"):
        fetch(url, tmp_path)
    assert time.monotonic() - started < FAST.attempts * (FAST.read_timeout + 2)
    assert only_final_files(tmp_path / "out") == []


@pytest.mark.parametrize("status", [403, 404])
def test_unpublished_month_has_its_own_error_and_no_retry(status, server, tmp_path):
    path = "/trip-data/yellow_tripdata_2031-01.parquet"
    server.fail(path, Fault("status", status))
    with pytest.raises(MonthNotPublished, match=f"HTTP {status}.*not published"):
        fetch(server.url + path, tmp_path)
    assert server.count(path) == 1
    assert only_final_files(tmp_path / "out") == []


def test_missing_file_on_cdn_is_not_published(server, tmp_path):
    with pytest.raises(MonthNotPublished):
        fetch(server.parquet_template.format(color="yellow", year=2031, month=1), tmp_path)


def test_other_4xx_is_not_retried(green, server, tmp_path):
    url, _ = green
    server.fail(GREEN_2021_01, Fault("status", 400))
    with pytest.raises(PipelineError, match="HTTP 400") as info:
        fetch(url, tmp_path)
    assert not isinstance(info.value, TransientSourceError | MonthNotPublished)
    assert server.count(GREEN_2021_01) == 1


def test_refused_connection_is_unreachable_after_a_short_retry(
    tmp_path, refused_port: RefusedPorts
):
    port = refused_port()
    url = f"http://127.0.0.1:{port}/trip-data/x.parquet"
    policy = RetryPolicy(attempts=50, backoff=0.01, connect_timeout=2, unreachable_for=0.3)
    started = time.monotonic()
    with pytest.raises(
        SourceUnreachable, match=rf"127\.0\.0\.1:{port} is unreachable: the connection was refused"
    ):
        fetch(url, tmp_path, policy=policy)
    assert time.monotonic() - started < 5, "retried for unreachable_for, not attempts times"
    assert only_final_files(tmp_path / "out") == []
    # Within UNREACHABLE_TTL the verdict stands: a backfill's next month does not wait again,
    # and the publication check says "unreachable", never "published".
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="refused"):
        is_published(f"http://127.0.0.1:{port}/trip-data/y.parquet", policy)
    assert time.monotonic() - started < 0.5


def test_head_that_cannot_connect_is_an_error_not_published(refused_port: RefusedPorts):
    port = refused_port()
    policy = RetryPolicy(attempts=3, backoff=0.01, connect_timeout=2, unreachable_for=0.1)
    with pytest.raises(SourceUnreachable, match=rf"127\.0\.0\.1:{port} is unreachable"):
        is_published(f"http://127.0.0.1:{port}/trip-data/green_tripdata_2021-01.parquet", policy)


def test_head_answers_tell_published_from_not(green, server: TLCServer):
    url, _ = green
    assert is_published(url, FAST)
    assert not is_published(server.url + "/trip-data/green_tripdata_2031-01.parquet", FAST)


def test_bad_files_table_covers_every_real_bad_file(tlc: Path):
    assert sorted(p.name for p in (tlc / "bad").iterdir()) == sorted(BAD_FILES)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_fails_once_with_its_cause(name, tlc: Path, server: TLCServer, tmp_path):
    fmt, cause = BAD_FILES[name]
    url = server.publish(f"/bad/{name}", tlc / "bad" / name)
    with pytest.raises(BadSourceFile) as info:
        fetch(url, tmp_path, fmt)
    assert cause in str(info.value)
    assert url in str(info.value)
    assert server.count(f"/bad/{name}") == 1, "a bad file is not a transient fault"
    assert only_final_files(tmp_path / "out") == []


def test_verify_rejects_truncated_gzip(tlc: Path, tmp_path: Path):
    data = (tlc / "months" / "green_tripdata_2020-10.csv.gz").read_bytes()
    p = tmp_path / "x.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadSourceFile, match="truncated or corrupt"):
        verify_file(p, "csv.gz")


def test_error_messages_never_carry_url_credentials(tmp_path, refused_port: RefusedPorts):
    url = f"http://u:hunter2@127.0.0.1:{refused_port()}/x.parquet?token=hunter3"
    with pytest.raises(TransientSourceError) as info:
        fetch(url, tmp_path)
    assert "hunter2" not in str(info.value)
    assert "hunter3" not in str(info.value)


def _marker_write_fails(
    monkeypatch: pytest.MonkeyPatch, lands: bool, readable: bool = True
) -> None:
    """The marker's creation raises: after it landed (its answer lost) or before; and the
    marker can be read back afterwards, or not (the store stopped answering)."""
    real_create, real_read = LocalStore.create_only, LocalStore.read_bytes

    def create_only(self: LocalStore, name: str, data: bytes, metadata: dict) -> bool:
        if lands:
            real_create(self, name, data, metadata)
        raise PipelineError(f"{name}: the write failed")

    def read_bytes(self: LocalStore, name: str) -> bytes | None:
        if not readable and name.endswith(".manifest.json"):
            raise PipelineError(f"{name}: no answer")
        return real_read(self, name)

    monkeypatch.setattr(LocalStore, "create_only", create_only)
    monkeypatch.setattr(LocalStore, "read_bytes", read_bytes)


def test_a_marker_write_that_landed_but_raised_is_read_back_and_stands(
    green, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The marker was created and the answer lost: read back, it is ours, so the download
    stands, with its data. (Deleting the data on the error, as before, made a month that
    looked downloaded and had no file.)"""
    url, src = green
    lake = local(tmp_path / "out")
    _marker_write_fails(monkeypatch, lands=True)
    raw = download(url, lake, "raw/x.parquet", "parquet", policy=FAST)
    assert lake.raw("raw/x.parquet") == raw
    assert (tmp_path / "out" / raw.name).read_bytes() == src.read_bytes()


def test_a_marker_write_that_did_not_land_leaves_nothing(
    green, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No marker stands: the data is deleted with the error, not left for a sweep that the
    month's next publication may run too soon to take it."""
    url, _ = green
    _marker_write_fails(monkeypatch, lands=False)
    with pytest.raises(PipelineError, match="the write failed"):
        fetch(url, tmp_path)
    assert only_final_files(tmp_path / "out") == []


def test_a_marker_that_cannot_be_read_back_keeps_the_data(
    green, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The marker's write raised and reading it back fails too: whether it stands is
    unknown, so the data it may name stays, and the first error is the one reported."""
    url, src = green
    lake = local(tmp_path / "out")
    _marker_write_fails(monkeypatch, lands=True, readable=False)
    with pytest.raises(PipelineError, match="the write failed"):
        download(url, lake, "raw/x.parquet", "parquet", policy=FAST)
    monkeypatch.undo()
    raw = lake.raw("raw/x.parquet")
    assert raw is not None
    assert (tmp_path / "out" / raw.name).read_bytes() == src.read_bytes()


def test_a_sweep_that_fails_after_publishing_fails_nothing(
    green, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """Sweeping orphans is housekeeping after the marker stands: its failure is one warning,
    the download succeeds, and its data stays."""
    url, src = green

    def no_sweep(self: LocalStore, prefix: str, older_than: object) -> list[str]:
        raise PermissionError(13, "Permission denied", prefix)

    monkeypatch.setattr(LocalStore, "sweep_temporaries", no_sweep)
    with caplog.at_level(logging.WARNING, logger="pipeline.lake.lake"):
        raw, dest = fetch(url, tmp_path)
    assert dest.read_bytes() == src.read_bytes()
    assert local(tmp_path / "out").raw("raw/x.parquet") == raw
    [line] = [r.getMessage() for r in caplog.records if r.name == "pipeline.lake.lake"]
    assert "could not sweep" in line
    assert "Permission denied" in line
