"""Every command in the README's shell blocks is one this project really offers.

The commands that move data are exercised elsewhere against local servers (all under
tests/integration/): the first command's `luigi ... LoadDuckDB` in cli/test_cli.py,
`bash .ci/run` by CI itself, LoadPostgres and the ingest CLI in sinks/test_postgres.py,
LoadBigQuery in sinks/test_bigquery.py, Backfill/IngestMonth/tlc-luigid in
orchestration/test_orchestration.py, tlc-cron in cli/test_cron.py, tlc-status in
cli/test_status.py, the compose services in test_docker.py (statically) and, with the podman
commands, test_container.py. This test keeps the README honest about names, tasks, flags and
arguments: a renamed flag breaks it.
"""

from __future__ import annotations

import configparser
import re
import shlex
import sys
from pathlib import Path

import pytest

import pipeline
from pipeline.cli import forget, ingest, status
from pipeline.cli import report as report_cli
from tests.support.fixtures import REPO

# Programs the README may use that are not ours.
EXTERNAL = {"python3.11", "bash", "psql", "cp", "docker", "podman", "podman-compose"}
# Luigi's own tools, installed with it.
LUIGI_TOOLS = {"luigi-deps-tree"}
LUIGI_GLOBAL_FLAGS = {"--local-scheduler", "--no-lock", "--workers", "--log-level"}


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        block = re.sub(r"<<'SQL'.*?\nSQL\n", "\n", block, flags=re.S)  # heredoc bodies
        block = block.replace("\\\n", " ")
        lines: list[str] = []
        for raw in block.splitlines():  # a quoted argument may span lines
            if lines and lines[-1].count('"') % 2:
                lines[-1] += " " + raw.strip()
            else:
                lines.append(raw)
        for line in lines:
            line = line.split("#", 1)[0].strip().rstrip("&").strip()
            if not line or line.startswith(("import", "con", "print", "SELECT", "FROM")):
                continue
            for part in line.split("&&"):
                words = shlex.split(part)
                while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value prefixes
                    words = words[1:]
                if words:
                    cmds.append(words)
    return cmds


def console_scripts() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines if line.strip()}


def check(cmd: list[str]) -> None:
    prog = cmd[0].removeprefix(".venv/bin/")
    if prog in EXTERNAL:
        return
    if prog == "pip":
        return
    if prog in LUIGI_TOOLS:
        assert (Path(sys.executable).parent / prog).exists(), f"{prog} is not installed"
        assert cmd[1:3] == ["--module", "pipeline"], cmd
        return
    if prog == "luigi":
        assert cmd[1:3] == ["--module", "pipeline"], cmd
        task = getattr(pipeline, cmd[3], None)
        assert task is not None, f"README names a task pipeline has not: {cmd[3]}"
        params = {"--" + name.replace("_", "-") for name, _ in task.get_params()}
        for flag in (a for a in cmd[4:] if a.startswith("--")):
            assert flag in params | LUIGI_GLOBAL_FLAGS, f"{cmd[3]} has no {flag}"
        return
    if prog == "python" and cmd[1:3] == ["-m", "pipeline.ingest"]:
        with pytest.raises(SystemExit) as e:  # parse only: --help after the arguments
            ingest.main([*cmd[3:], "--help"])
        assert e.value.code == 0
        return
    if prog == "python" and cmd[1:2] == ["-"]:
        return  # the heredoc query; its SQL is run in orchestration/test_tasks.py's joins
    assert prog in console_scripts(), f"README runs {prog}, which is not installed"
    if prog == "tlc-forget":
        args = forget.build_parser().parse_args(cmd[1:])
        assert args.year
        assert args.month
    if prog == "tlc-status":
        status.build_parser().parse_args(cmd[1:])  # a renamed flag exits 2
    if prog == "tlc-report":
        report_cli.build_parser().parse_args(cmd[1:])


def test_every_readme_command_exists():
    cmds = readme_commands()
    assert len(cmds) > 15
    for cmd in cmds:
        check(cmd)
    progs = {c[0].removeprefix(".venv/bin/") for c in cmds}
    assert {"luigi", "tlc-luigid", "tlc-forget", "bash"} <= progs
