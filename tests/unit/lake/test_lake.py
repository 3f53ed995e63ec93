"""The lake's publication protocol on a folder: data under writer-token names, the marker last
and create-only, the loser of a race deletes its own data, orphans of dead writers are swept,
and lakes written before markers came last still read. (tests/integration/lake/test_gcs.py
runs the same protocol on the GCS emulator.)"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.domain.errors import LakeDataMissing, LakeWriteError
from pipeline.domain.months import MonthKey
from pipeline.lake import local as localmod
from pipeline.lake.lake import Lake, local, split_ext
from pipeline.lake.local import LocalStore
from tests.support.data import sample_report
from tests.support.lakes import files_under

KEY = MonthKey("green", 2021, 1)


def dead_pid() -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout)


def write(lake: Lake, name: str, data: bytes) -> None:
    with lake.writer(name) as out:
        out.write(data)


def test_writer_publishes_only_a_whole_object(tmp_path: Path):
    lake = local(tmp_path)

    def broken_source() -> None:
        with lake.writer("raw/x.parquet") as out:
            out.write(b"half")
            raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        broken_source()
    assert files_under(tmp_path) == []
    with lake.writer("raw/x.parquet") as out:
        out.write(b"whole")
    assert (tmp_path / "raw/x.parquet").read_bytes() == b"whole"
    assert out.size == 5
    assert len(out.sha256) == 64


def test_create_only_creates_once(tmp_path: Path):
    store = LocalStore(tmp_path)
    assert store.create_only("m/_quality.json", b"first", {})
    assert not store.create_only("m/_quality.json", b"second", {})
    assert (tmp_path / "m/_quality.json").read_bytes() == b"first"
    assert files_under(tmp_path) == ["m/_quality.json"]  # no temporary left


def test_raw_file_is_absent_until_its_manifest_is_written(tmp_path: Path):
    lake = local(tmp_path)
    raw_name = lake.raw_name(KEY, "parquet")
    data = lake.new_raw_object(raw_name)
    write(lake, data, b"PAR1...PAR1")
    assert lake.raw(raw_name) is None, "data without its marker is not published"
    raw = lake.publish_raw(raw_name, data, {"sha256": "ab", "bytes": 11})
    assert raw.name == data
    assert lake.raw(raw_name) == raw
    assert (
        json.loads((tmp_path / (raw_name + ".manifest.json")).read_text())["object"]
        == (data.rsplit("/", 1)[1])
    )


def test_the_second_publisher_deletes_its_own_data_and_takes_the_winners(tmp_path: Path):
    lake = local(tmp_path)
    raw_name = lake.raw_name(KEY, "parquet")
    first, second = lake.new_raw_object(raw_name), lake.new_raw_object(raw_name)
    write(lake, first, b"one")
    write(lake, second, b"two")
    won = lake.publish_raw(raw_name, first, {"sha256": "1"})
    lost = lake.publish_raw(raw_name, second, {"sha256": "2"})
    assert lost == won
    assert not (tmp_path / second).exists()
    assert (tmp_path / first).read_bytes() == b"one"


def test_clean_month_is_published_by_its_report_and_races_the_same_way(tmp_path: Path):
    lake = local(tmp_path)
    reports = []
    for body in (b"first", b"second"):
        part = lake.new_clean_object(KEY)
        write(lake, part, body)
        report = sample_report()
        report["files"][0]["name"] = part.rsplit("/", 1)[1]
        reports.append(report)
        assert lake.quality(KEY) is None or body == b"second"
    assert lake.publish_clean(KEY, reports[0]) == reports[0]
    assert lake.publish_clean(KEY, reports[1]) == reports[0]
    assert lake.quality(KEY) == reports[0]
    parts = [n for n in files_under(tmp_path) if n.endswith(".parquet")]
    assert parts == lake.clean_files(KEY, reports[0])


def test_publishing_sweeps_orphans_of_dead_writers_and_old_ones_only(tmp_path: Path):
    lake = local(tmp_path)
    lake.orphan_age = dt.timedelta(hours=1)
    raw_name = lake.raw_name(KEY, "parquet")
    stem, ext = split_ext(raw_name)
    host = localmod._HOST
    dead = f"{stem}.{host}-{dead_pid()}-0000dead{ext}"
    alive = f"{stem}.{host}-{os.getpid()}-0000a11e{ext}"
    other_fresh = f"{stem}.otherhost-1-00000001{ext}"
    other_old = f"{stem}.otherhost-2-00000002{ext}"
    dead_temp = f"raw/green/.green_tripdata_2021-01.x.parquet.tmp-{host}-{dead_pid()}-deadbeef"
    for name in (dead, alive, other_fresh, other_old, dead_temp):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    hours_ago = dt.datetime.now().timestamp() - 2 * 3600
    os.utime(tmp_path / other_old, (hours_ago, hours_ago))
    mine = lake.new_raw_object(raw_name)
    write(lake, mine, b"mine")
    lake.publish_raw(raw_name, mine, {"sha256": "m"})
    left = files_under(tmp_path)
    assert dead not in left
    assert other_old not in left
    assert dead_temp not in left
    assert alive in left, "a live writer's data stays"
    assert other_fresh in left, "a recent writer's data on another host stays"
    assert mine in left


def test_a_lake_written_before_markers_came_last_still_reads(tmp_path: Path):
    lake = local(tmp_path)
    raw_name = lake.raw_name(KEY, "parquet")
    (tmp_path / raw_name).parent.mkdir(parents=True)
    (tmp_path / (raw_name + ".manifest.json")).write_text(json.dumps({"sha256": "old"}))
    assert lake.raw(raw_name) is None, "a manifest whose data never got its name: not there"
    (tmp_path / raw_name).write_bytes(b"PAR1")
    raw = lake.raw(raw_name)
    assert raw is not None
    assert raw.name == raw_name


def test_remove_month_takes_the_marker_first_and_everything_else(tmp_path: Path):
    lake = local(tmp_path)
    part = lake.new_clean_object(KEY)
    write(lake, part, b"data")
    report = sample_report()
    report["files"][0]["name"] = part.rsplit("/", 1)[1]
    lake.publish_clean(KEY, report)
    planned = lake.remove_month(KEY, {"clean"}, dry_run=True)
    assert planned[0].endswith("_quality.json")
    assert len(planned) == 2
    assert len(files_under(tmp_path)) == 2
    assert lake.remove_month(KEY, {"clean"}) == planned
    assert files_under(tmp_path) == []
    assert not (tmp_path / "clean").exists(), "empty folders go too"


def test_quality_digests_read_the_reports(tmp_path: Path):
    lake = local(tmp_path)
    report = sample_report()
    lake.publish_clean(KEY, report)
    digests = lake.quality_digests([KEY, MonthKey("green", 2021, 2)])
    assert list(digests) == [KEY]
    assert digests[KEY].rows_out == report["rows_out"]


def test_a_write_error_is_one_clear_error_naming_the_object(tmp_path: Path):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    from pipeline.lake.local import _FileSink

    final = tmp_path / "raw" / "x.bin"
    with (
        open("/dev/full", "wb", buffering=0) as full,
        pytest.raises(LakeWriteError, match=r"raw/x.bin: cannot write to the lake: No space left"),
    ):
        _FileSink(full, final).write(b"x" * 10)


def test_create_only_retried_after_it_landed_is_ours(tmp_path: Path):
    """Over NFS a LINK whose reply was lost is sent again and fails with EEXIST although it
    worked: a marker with our bytes (markers carry the writer's token) is ours."""
    store = LocalStore(tmp_path)
    assert store.create_only("m/_quality.json", b"mine", {})
    assert store.create_only("m/_quality.json", b"mine", {})
    assert not store.create_only("m/_quality.json", b"theirs", {})


def test_a_failed_sweep_after_publishing_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    lake = local(tmp_path)
    part = lake.new_clean_object(KEY)
    write(lake, part, b"data")
    report = sample_report()
    report["files"][0]["name"] = part.rsplit("/", 1)[1]

    def no_listing(self: LocalStore, prefix: str) -> list[object]:
        raise OSError(5, "Input/output error", prefix)

    monkeypatch.setattr(LocalStore, "list_objects", no_listing)
    with caplog.at_level(logging.WARNING, logger="pipeline.lake.lake"):
        assert lake.publish_clean(KEY, report) == report
    assert (tmp_path / part).read_bytes() == b"data"
    assert any("could not sweep" in r.getMessage() for r in caplog.records)


def test_require_data_names_the_marker_the_first_missing_object_and_how_many(tmp_path: Path):
    lake = local(tmp_path)
    marker = lake.quality_name(KEY)
    parts = [lake.clean_prefix(KEY) + f"part-{i}.x.parquet" for i in range(3)]
    write(lake, parts[0], b"PAR1")
    lake.require_data(marker, parts[:1], "fix it")  # all there: nothing to say

    with pytest.raises(LakeDataMissing) as e:
        lake.require_data(marker, parts, "fix it")
    assert str(e.value) == (
        f"{lake.uri(marker)} names {lake.uri(parts[1])} (and 1 more of its 3 objects), "
        "which is not in the lake (removed outside the pipeline?); fix it"
    )
