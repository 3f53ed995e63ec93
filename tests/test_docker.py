"""The Docker image and compose stack, checked statically: no Docker engine runs on the CI
machines. Compose is validated against the compose-spec JSON schema, the Dockerfile is linted
by hadolint and checked for this project's rules, and every command the stack runs must exist
in the package."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import luigi
from ruamel.yaml import YAML

import pipeline
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def compose() -> dict:
    return YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())


def console_scripts() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines if line.strip()}


def test_compose_file_matches_the_compose_spec():
    run = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(REPO / "docker-compose.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_passes_hadolint():
    run = subprocess.run(
        [str(BIN / "hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_follows_the_project_rules():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages
    assert all(s.startswith("python:3.11-slim") for s in stages)
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER 10001:10001$", final, re.M), "the final stage runs as non-root"
    assert "LUIGI_CONFIG_PARSER=toml" in final
    assert re.search(r"pip install --no-cache-dir \.$", text, re.M), "non-editable install"
    assert " -e " not in text
    assert "HEALTHCHECK" in final
    assert "COPY docker/luigi.toml /app/luigi.toml" in final
    # no secrets baked in
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|KEY)\s*=", text, re.I)
    assert ".env" not in text


def test_stack_config_is_valid_toml_without_secrets():
    cfg = tomllib.loads((REPO / "docker" / "luigi.toml").read_text())
    assert cfg["core"]["scheduler_host"] == "luigid"
    assert cfg["postgres"]["host"] == "postgres"
    assert "password" not in cfg["postgres"]
    assert "@postgres" in cfg["task_history"]["db_connection"]
    assert ":" not in cfg["task_history"]["db_connection"].split("//")[1].split("@")[0]
    gcp = tomllib.loads((REPO / "docker" / "gcp.toml.example").read_text())
    assert "bigquery" in gcp["pipeline"]["sinks"]


def test_secrets_come_from_a_git_ignored_env_file():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert "docker/gcp.toml" in ignored
    example = (REPO / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example
    text = (REPO / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text
    for service in compose()["services"].values():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search("PASSWORD|SECRET|TOKEN", key):
                assert str(value).startswith("${"), f"{key} must come from .env"


def test_profiles_ports_volumes_and_healthchecks():
    services = compose()["services"]
    default = {n for n, s in services.items() if not s.get("profiles")}
    assert default == {"postgres", "luigid", "pipeline", "cron"}
    assert {n for n, s in services.items() if "gcp" in s.get("profiles", [])} == {
        "pipeline-gcp",
        "cron-gcp",
    }
    assert services["luigid"]["ports"] == ["127.0.0.1:8082:8082"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["luigid"]
    assert any(v.startswith("luigid-state:") for v in services["luigid"]["volumes"])
    for name in ("pipeline-gcp", "cron-gcp"):
        mounts = services[name]["volumes"]
        key = [m for m in mounts if m.endswith(":/run/secrets/gcp-key.json:ro")]
        assert key, f"{name} mounts the service-account key read-only"
        assert services[name]["environment"]["GOOGLE_APPLICATION_CREDENTIALS"] == (
            "/run/secrets/gcp-key.json"
        )


def commands() -> list[list[str]]:
    """Every command the stack runs: compose commands, and the crontab's."""
    out = []
    for service in compose()["services"].values():
        cmd = service.get("command")
        if not cmd:
            continue
        if cmd[:2] == ["sh", "-c"]:
            cmd = shlex.split(cmd[2].removeprefix("exec "))
        out.append(cmd)
    for line in (REPO / "docker" / "crontab").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.append(shlex.split(line)[5:])
    return out


def test_every_command_the_stack_runs_exists_in_the_package():
    scripts = console_scripts() | {"luigi", "supercronic"}
    assert "supercronic" in (REPO / "Dockerfile").read_text()
    tasks = set(luigi.task_register.Register.task_names())
    seen = set()
    for cmd in commands():
        assert cmd[0] in scripts, f"{cmd[0]} is not installed by the image"
        seen.add(cmd[0])
        if cmd[0] == "luigi":
            assert cmd[1:3] == ["--module", "pipeline"]
            assert cmd[3] in tasks, f"no task {cmd[3]}"
            assert cmd[3] in pipeline.__all__, f"{cmd[3]} is not exported by pipeline"
            params = {p.replace("_", "-") for p, _ in getattr(pipeline, cmd[3]).get_params()}
            for flag in [a for a in cmd[4:] if a.startswith("--")]:
                assert flag[2:] in params, f"{cmd[3]} has no {flag}"
        if cmd[0] == "supercronic":
            assert cmd[1] == "/app/crontab"
    assert {"luigi", "tlc-luigid", "tlc-cron", "supercronic"} <= seen
    # and the console scripts really run
    for script in ("tlc-luigid", "tlc-cron"):
        run = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
