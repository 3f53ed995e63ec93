"""The real `luigi --module pipeline ...` command in a subprocess, and its TOML configuration.

luigi reads luigi.toml only when LUIGI_CONFIG_PARSER=toml (luigi#2907). These tests run the
command with that variable removed, to prove the package selects TOML by itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.support.fixtures import REPO, PipelineEnv

LUIGI = str(Path(sys.executable).parent / "luigi")


def run_luigi(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LUIGI, "--module", "pipeline", *args, "--local-scheduler"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def repo_toml_pointed_at(env: PipelineEnv) -> str:
    """The repository's own luigi.toml, with only the three URLs pointed at the local server."""
    text = (REPO / "luigi.toml").read_text()
    for key, url in (
        ("parquet_url", env.server.parquet_template),
        ("csv_url", env.server.csv_template),
        ("zones_url", env.server.zones_url),
    ):
        text, n = re.subn(rf'^{key} = ".*"$', f'{key} = "{url}"', text, flags=re.M)
        assert n == 1, key
    return text


def count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_luigi_command_reads_luigi_toml_from_cwd_without_parser_variable(env, tlc, tmp_path):
    env.server.publish_month(
        "green", 2021, 1, tlc / "months" / "green_tripdata_2021-01.parquet", "parquet"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "luigi.toml").write_text(repo_toml_pointed_at(env))
    proc_env = dict(os.environ)
    proc_env.pop("LUIGI_CONFIG_PARSER", None)
    proc_env.pop("LUIGI_CONFIG_PATH", None)

    proc = run_luigi(
        ["LoadDuckDB", "--color", "green", "--year", "2021", "--month", "1"], work, proc_env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "This progress looks :)" in proc.stderr + proc.stdout
    # the defaults of the repo's luigi.toml: data/lake and data/warehouse.duckdb under cwd
    assert (work / "data/lake/raw/green/green_tripdata_2021-01.parquet.manifest.json").exists()
    assert list((work / "data/lake/raw/green").glob("green_tripdata_2021-01.*-*.parquet"))
    assert list((work / "data/lake/clean/green/year=2021/month=01").glob("part-0.*.parquet"))
    assert count(work / "data/warehouse.duckdb", "green_trips") == 76368


def test_luigi_config_path_overrides_single_keys(env, tlc, tmp_path):
    env.server.publish_month(
        "green", 2020, 10, tlc / "months" / "green_tripdata_2020-10.csv.gz", "csv.gz"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "luigi.toml").write_text(repo_toml_pointed_at(env))
    override = tmp_path / "override.toml"
    other_lake = tmp_path / "elsewhere" / "lake"
    override.write_text(f'[source]\nformat = "csv.gz"\n\n[lake]\nroot = "{other_lake}"\n')
    proc_env = dict(os.environ)
    proc_env.pop("LUIGI_CONFIG_PARSER", None)
    proc_env["LUIGI_CONFIG_PATH"] = str(override)

    proc = run_luigi(
        ["CleanParquet", "--color", "green", "--year", "2020", "--month", "10"], work, proc_env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (other_lake / "raw/green/green_tripdata_2020-10.csv.gz.manifest.json").exists()
    assert (other_lake / "clean/green/year=2020/month=10/_quality.json").exists()
    assert not (work / "data").exists()  # the override won; the URLs still came from cwd


def test_default_color_is_yellow(env: PipelineEnv):
    proc = subprocess.run(
        [
            LUIGI,
            "--module",
            "pipeline",
            "LoadDuckDB",
            "--year",
            "2021",
            "--month",
            "1",
            "--local-scheduler",
            "--help",
        ],
        cwd=REPO,
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--color" in proc.stdout
    from pipeline.orchestration.tasks import LoadDuckDB

    assert LoadDuckDB(year=2021, month=1).color == "yellow"


def test_forget_console_script(env: PipelineEnv, tmp_path):
    tool = Path(sys.executable).parent / "tlc-forget"
    proc = subprocess.run(
        [str(tool), "--color", "green", "--year", "2021", "--month", "1", "--from", "clean"],
        cwd=REPO,
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nothing to remove" in proc.stdout
