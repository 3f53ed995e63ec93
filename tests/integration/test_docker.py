"""The Docker image and compose stack, checked statically, in a second: compose is validated
against the compose-spec JSON schema, the Dockerfile is linted by hadolint and checked for this
project's rules, the lock file against setup.cfg, and every command the stack runs must exist in
the package. tests/integration/test_container.py builds and runs them for real with podman."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import luigi
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

import pipeline
from tests.support.fixtures import REPO

BIN = Path(sys.executable).parent


def compose() -> dict:
    return YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())


def crontab() -> dict:
    return YAML(typ="safe").load((REPO / "docker" / "crontab.yaml").read_text())


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
        [str(BIN / "hadolint"), "--failure-threshold", "warning", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
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
    # non-editable, every version from the lock file
    assert re.search(r"pip install --no-cache-dir -c constraints\.txt [^\n]*\s\.\s", text)
    assert "COPY docker/constraints.txt constraints.txt" in text
    assert "PIP_CONSTRAINT=/src/constraints.txt" in text, "pins the build backend too"
    assert " -e " not in text
    # nothing fetched from outside a package index: no frontend image, no URL
    assert not re.search(r"^#\s*syntax=", text, re.M | re.I)
    assert not re.search(r"^ADD\s", text, re.M)
    assert "http://" not in text
    assert "https://" not in text
    # an init as PID 1; a HEALTHCHECK that asks the service, not the import system
    assert 'ENTRYPOINT ["dumb-init", "--"]' in final
    assert re.search(r'HEALTHCHECK .*\n\s*CMD \["python", "/app/healthcheck.py"\]', final)
    assert "COPY docker/luigi.toml /app/luigi.toml" in final
    assert "COPY docker/crontab.yaml /app/crontab.yaml" in final
    # no secrets baked in
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|KEY)\s*=", text, re.I)
    assert ".env" not in text


def test_lock_file_pins_everything_setup_cfg_asks_for():
    """docker/constraints.txt (docker/refresh-constraints.sh) pins one version of every package
    the image installs, and each pin satisfies setup.cfg: a new dependency or a changed bound
    without a refreshed lock fails here, not in a build."""
    pins = {}
    for line in (REPO / "docker" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"not pinned: {line}"
            pins[canonicalize_name(req.name)] = spec.version
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    wanted = [
        Requirement(line)
        for line in cfg["options"]["install_requires"].splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in setup.cfg but not in docker/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"docker/constraints.txt pins {req.name}=={pins[name]}, setup.cfg wants {req}"
        )
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    for req in map(Requirement, build):
        name = canonicalize_name(req.name)
        assert name in pins, f"build backend {req.name} is not pinned"
        assert req.specifier.contains(pins[name])
    assert {"yacron", "dumb-init"} <= set(pins), "the cron runner and the init are pinned too"


def test_build_context_holds_only_what_the_dockerfile_copies():
    """.dockerignore allows in only the Dockerfile's COPY sources: data/, .venv/, .emu/ and
    secrets never reach the build context."""
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is excluded first"
    allowed = {r[1:].strip("/") for r in rules if r.startswith("!")}
    copied = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied |= {src.strip("/").split("/")[0] for src in line.split()[1:-1]}
    tops = {a.split("/")[0] for a in allowed}
    assert copied <= tops, f"COPY sources not in the build context: {copied - tops}"
    assert tops <= copied, f".dockerignore lets in what no COPY uses: {tops - copied}"
    for never in ("data", ".venv", ".emu", "secrets", ".env"):
        assert never not in tops


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
    # loopback only; the host port can move (the container test uses a free one)
    assert services["luigid"]["ports"] == ["127.0.0.1:${LUIGID_PORT:-8082}:8082"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    # healthchecks that use the service: a query, an API call
    pg_check = services["postgres"]["healthcheck"]["test"]
    assert pg_check[:2] == ["CMD", "psql"]
    assert "select 1" in pg_check
    luigid_check = " ".join(services["luigid"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8082/api/" in luigid_check
    assert any(v.startswith("luigid-state:/data") for v in services["luigid"]["volumes"])
    # luigid writes only at the root of its volume, which exists on a fresh volume (a
    # --logdir below it crashed luigid with FileNotFoundError); it logs to stdout
    luigid_cmd = services["luigid"]["command"]
    assert "--logdir" not in luigid_cmd
    state = luigid_cmd[luigid_cmd.index("--state-path") + 1]
    assert str(Path(state).parent) == "/data"
    for name in ("pipeline-gcp", "cron-gcp"):
        mounts = services[name]["volumes"]
        key = [m for m in mounts if m.endswith(":/run/secrets/gcp-key.json:ro")]
        assert key, f"{name} mounts the service-account key read-only"
        assert services[name]["environment"]["GOOGLE_APPLICATION_CREDENTIALS"] == (
            "/run/secrets/gcp-key.json"
        )


def test_pgadmin_profile_points_at_the_stacks_postgres_without_a_password():
    services = compose()
    pgadmin = services["services"]["pgadmin"]
    assert pgadmin["profiles"] == ["pgadmin"]
    assert pgadmin["image"].startswith("dpage/pgadmin4:")
    assert pgadmin["ports"] == ["127.0.0.1:${PGADMIN_PORT:-8080}:80"], "loopback only"
    assert pgadmin["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgadmin" in services["volumes"]
    assert "pgadmin:/var/lib/pgadmin" in pgadmin["volumes"]
    env = pgadmin["environment"]
    # from .env, and optional for compose: a `:?` would stop the default profile too, because
    # compose interpolates every service whatever profiles are active
    assert env["PGADMIN_DEFAULT_PASSWORD"] == "${PGADMIN_PASSWORD:-}"
    example = (REPO / ".env.example").read_text()
    assert "PGADMIN_PASSWORD=" in example
    assert "PGADMIN_EMAIL=" in example
    # servers.json is mounted read-only where pgAdmin reads it, and names the stack's server
    (mount,) = [v for v in pgadmin["volumes"] if v.endswith(":ro")]
    host, target, _ = mount.split(":")
    assert target == env["PGADMIN_SERVER_JSON_FILE"] == "/pgadmin4/servers.json"
    servers = json.loads((REPO / host).read_text())["Servers"]
    (server,) = servers.values()
    postgres_env = services["services"]["postgres"]["environment"]
    assert server["Host"] == "postgres"
    assert server["Port"] == 5432
    assert server["Username"] == postgres_env["POSTGRES_USER"]
    assert server["MaintenanceDB"] == postgres_env["POSTGRES_DB"]
    assert not {k for k in server if re.search("pass", k, re.I)}, "no password in the repo"


def commands() -> list[list[str]]:
    """Every command the stack runs: compose commands, and the crontab's jobs."""
    out = []
    for service in compose()["services"].values():
        cmd = service.get("command")
        if not cmd:
            continue
        if cmd[:2] == ["sh", "-c"]:
            cmd = shlex.split(cmd[2].removeprefix("exec "))
        out.append(cmd)
    for job in crontab()["jobs"]:
        out.append(shlex.split(job["command"]))
    return out


def test_crontab_runs_tlc_cron_daily_in_utc_one_at_a_time():
    tab = crontab()
    (job,) = tab["jobs"]
    assert job["command"] == "tlc-cron"
    assert len(job["schedule"].split()) == 5
    defaults = tab["defaults"]
    assert defaults["utc"] is True
    assert defaults["concurrencyPolicy"] == "Forbid"
    # Luigi logs to stderr: a run must not count as failed for that
    assert defaults["failsWhen"]["producesStderr"] is False
    assert defaults["failsWhen"]["nonzeroReturn"] is True


def test_every_command_the_stack_runs_exists_in_the_package():
    scripts = console_scripts() | {"luigi", "yacron"}
    assert "yacron" in (REPO / "Dockerfile").read_text()
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
        if cmd[0] == "yacron":
            assert cmd[1:] == ["-c", "/app/crontab.yaml"]
    assert {"luigi", "tlc-luigid", "tlc-cron", "yacron"} <= seen
    # and the console scripts really run
    for script in ("tlc-luigid", "tlc-cron"):
        run = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
