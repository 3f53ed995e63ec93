"""Atomic files: complete under their final name, or absent; temporaries of dead writers swept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.lake import local as lake


def write_then_fail(publisher, write) -> None:
    with publisher as tmp:
        write(tmp)
        raise RuntimeError("boom")


def test_atomic_file_publishes_only_on_success(tmp_path: Path):
    final = tmp_path / "a" / "f.txt"
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(lake.atomic_file(final), lambda tmp: tmp.write_text("half"))
    assert list((tmp_path / "a").iterdir()) == []
    with lake.atomic_file(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]


def test_sweep_removes_only_temps_of_dead_processes_of_this_host(tmp_path: Path):
    final = tmp_path / "f.parquet"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    mine = lake.temp_name(final)
    theirs = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{dead}-"))
    other_host = final.with_name(f".{final.name}.tmp-otherhost-{dead}-abcd1234")
    for p in (mine, theirs, other_host):
        p.write_text("x")
    assert lake.sweep_stale_temps(final) == [theirs]
    assert mine.exists()
    assert other_host.exists()


def test_sha256_file(tmp_path: Path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert lake.sha256_file(p) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
