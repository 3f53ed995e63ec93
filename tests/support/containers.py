"""podman for the tests: build the project's image and run its compose stack for real.

Where no image registry answers (these machines: see shared/notes/containers.md), the official
base images are replaced by stand-ins built from Debian packages and tagged with the official
names, so the Dockerfile and docker-compose.yml run unchanged:

- ``python:3.11-slim``: a Debian bookworm root filesystem made by mmdebstrap from this
  machine's own apt mirrors, plus ``tests/support/standins/python.Containerfile``;
- ``postgres:15``: Debian's postgresql-15 on top of it (``postgres.Containerfile``).

Both are built once and then found by tag; a real image, pulled where a registry answers, is
always preferred. Everything here talks to podman through its command line only.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.lake.local import pid_alive

STANDINS = Path(__file__).resolve().parent / "standins"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PYTHON_IMAGE = "docker.io/library/python:3.11-slim"
POSTGRES_IMAGE = "docker.io/library/postgres:15"
ROOTFS_IMAGE = "localhost/tlc-pipeline-standin-rootfs:bookworm"
STANDIN_LABEL = "org.tlc-pipeline.stand-in"
# Labels podman-compose puts on what it creates.
PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "io.podman.compose.service"
INSTALL_HINT = "as root: bash .ci/install-podman.sh (Debian packages, shared/notes/containers.md)"


class ContainerError(RuntimeError):
    pass


# -- the podman command line ---------------------------------------------------------------------
def podman_path() -> str | None:
    return shutil.which("podman")


def podman(
    *args: str, check: bool = True, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run podman; on failure (with ``check``) raise with its stderr."""
    cmd = [podman_path() or "podman", *args]
    try:
        run = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise ContainerError(f"{' '.join(cmd)} did not finish within {timeout:.0f} s") from e
    if check and run.returncode != 0:
        raise ContainerError(
            f"{' '.join(cmd)} exited {run.returncode}:\n{quiet(run.stderr)[-4000:]}"
        )
    return run


def quiet(stderr: str) -> str:
    """podman without systemd says on every run that it cannot add healthcheck timers: noise."""
    return "\n".join(line for line in stderr.splitlines() if "systemd" not in line)


def unusable() -> str | None:
    """None if podman is installed and answers as root; else why not (for a skip message)."""
    if not podman_path():
        return f"podman is not installed ({INSTALL_HINT})"
    run = podman("info", "--format", "{{.Host.Security.Rootless}}", check=False, timeout=60)
    if run.returncode != 0:
        raise ContainerError(f"podman is installed but `podman info` fails: {run.stderr[-2000:]}")
    if run.stdout.strip() == "true":
        return (
            "podman runs rootless here: the test serves the TLC mirror on the stack's bridge "
            "network, which rootless networking hides from the host. Run the tests as root."
        )
    return None


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def image_label(ref: str, label: str) -> str | None:
    run = podman("image", "inspect", ref, "--format", "{{json .Labels}}", check=False)
    if run.returncode != 0:
        return None
    return (json.loads(run.stdout or "null") or {}).get(label)


# -- waiting on observable things, with deadlines --------------------------------------------------
def wait_until(
    what: str, probe: Callable[[], str | None], timeout: float, every: float = 0.5
) -> float:
    """Call ``probe`` (None means done, else the reason it is not) until it passes; seconds
    taken. Raises with the last reason after ``timeout`` seconds."""
    start = time.monotonic()
    while True:
        why = probe()
        if why is None:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise ContainerError(f"{what}: not after {timeout:.0f} s: {why}")
        time.sleep(every)  # the poll's pace: what is waited on is ``probe``


def follow_log(container: str, pattern: str, timeout: float) -> str:
    """Follow ``podman logs -f`` until a line matches ``pattern``; return the log so far."""
    proc = subprocess.Popen(
        [podman_path() or "podman", "logs", "-f", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
            if line is None or left <= 0:
                tail = "".join(seen[-40:])
                raise ContainerError(
                    f"{container}: no log line matching {pattern!r} within {timeout:.0f} s"
                    f"{' (the log ended)' if line is None else ''}; last lines:\n{tail}"
                )
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
    finally:
        proc.kill()
        proc.wait()


# -- base images: pulled, found, or stand-ins --------------------------------------------------
@dataclass
class BaseImages:
    """How each base image was obtained ("local", "pulled", "stand-in built", "stand-in")."""

    how: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def ensure_base_images(log_dir: Path) -> BaseImages:
    out = BaseImages()
    for ref, build in ((PYTHON_IMAGE, build_python_standin), (POSTGRES_IMAGE, build_pg_standin)):
        start = time.monotonic()
        standin = image_exists(ref) and image_label(ref, STANDIN_LABEL) is not None
        if image_exists(ref) and not standin:
            out.how[ref] = "local"
        elif try_pull(ref):
            out.how[ref] = "pulled"
        elif standin:
            out.how[ref] = "stand-in"
        else:
            build(log_dir)
            out.how[ref] = "stand-in built"
        out.seconds[ref] = time.monotonic() - start
    return out


def try_pull(ref: str) -> bool:
    """A registry that is unreachable answers at once here (no DNS); cap a hanging one."""
    try:
        return podman("pull", "--quiet", ref, check=False, timeout=180).returncode == 0
    except ContainerError:
        return False


def debian_sources() -> list[str]:
    """``deb`` lines for bookworm (main, updates, security) on this machine's own apt mirrors."""
    main, security = None, None
    for uri, suite in _apt_uris():
        if suite.endswith("-security"):
            security = security or uri
        elif not suite.endswith(("-updates", "-backports", "-proposed-updates")):
            main = main or uri
    if not main:
        raise ContainerError(
            "no Debian mirror in /etc/apt/sources.list{,.d/}: cannot build the stand-in images"
        )
    lines = [f"deb {main} bookworm main", f"deb {main} bookworm-updates main"]
    if security:
        lines.append(f"deb {security} bookworm-security main")
    return lines


def _apt_uris() -> Iterator[tuple[str, str]]:
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    yield uri, suite
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                yield words[1], words[2]


def build_python_standin(log_dir: Path) -> None:
    """python:3.11-slim from Debian packages: mmdebstrap a root filesystem, import it, add the
    python/pip names the official image has."""
    if not image_exists(ROOTFS_IMAGE):
        mmdebstrap = shutil.which("mmdebstrap")
        if not mmdebstrap:
            raise ContainerError(f"mmdebstrap is missing, needed for the stand-in ({INSTALL_HINT})")
        with tempfile.TemporaryDirectory(prefix="tlc-rootfs-") as tmp:
            tar = Path(tmp) / "rootfs.tar"
            packages = (
                "python3.11,python3.11-venv,python3-pip,ca-certificates,passwd,tzdata,netbase"
            )
            cmd = [mmdebstrap, "--variant=minbase", f"--include={packages}", "bookworm", str(tar)]
            _logged(
                [*cmd, *debian_sources()], log_dir / "mmdebstrap.log", "mmdebstrap", timeout=600
            )
            podman(
                "import",
                "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change", "ENV LANG=C.UTF-8",
                str(tar), ROOTFS_IMAGE,
                timeout=300,
            )  # fmt: skip
    build(
        STANDINS,
        PYTHON_IMAGE,
        log_dir / "python-standin.log",
        containerfile=STANDINS / "python.Containerfile",
        build_args={"ROOTFS": ROOTFS_IMAGE},
    )


def build_pg_standin(log_dir: Path) -> None:
    if not image_exists(PYTHON_IMAGE):
        build_python_standin(log_dir)
    build(
        STANDINS,
        POSTGRES_IMAGE,
        log_dir / "postgres-standin.log",
        containerfile=STANDINS / "postgres.Containerfile",
    )


def build(
    context: Path,
    tag: str,
    log: Path,
    containerfile: Path | None = None,
    build_args: dict[str, str] | None = None,
) -> float:
    """``podman build --format docker`` (OCI would drop HEALTHCHECK and SHELL) from local base
    images only; the host's CA bundle is mounted into RUN steps for pip/apt behind a TLS proxy.
    Returns the seconds it took; the full output goes to ``log``."""
    cmd = [podman_path() or "podman", "build", "--format", "docker", "--pull=never", "-t", tag]
    if CA_BUNDLE.exists():
        cmd += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    if containerfile:
        cmd += ["-f", str(containerfile)]
    for key, value in (build_args or {}).items():
        cmd += ["--build-arg", f"{key}={value}"]
    start = time.monotonic()
    _logged([*cmd, str(context)], log, f"podman build -t {tag}", timeout=900)
    return time.monotonic() - start


def _logged(cmd: Sequence[str], log: Path, what: str, timeout: float) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        try:
            run = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise ContainerError(
                f"{what} did not finish within {timeout:.0f} s (log: {log})"
            ) from e
    if run.returncode != 0:
        tail = "\n".join(quiet(log.read_text()).splitlines()[-40:])
        raise ContainerError(f"{what} exited {run.returncode} (log: {log}):\n{tail}")


# -- a compose project -----------------------------------------------------------------------------
def podman_compose() -> str:
    here = Path(sys.executable).parent / "podman-compose"
    found = str(here) if here.exists() else shutil.which("podman-compose")
    if not found:
        raise ContainerError("podman-compose is missing: pip install -e '.[dev]'")
    return found


@dataclass
class Compose:
    """One podman-compose project: its own name, so runs never share containers or volumes."""

    project: str
    files: list[Path]
    workdir: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [podman_compose(), "-p", self.project]
        for f in self.files:
            cmd += ["-f", str(f)]
        try:
            run = subprocess.run(
                [*cmd, *args],
                cwd=self.workdir,
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise ContainerError(f"podman-compose {' '.join(args)}: over {timeout:.0f} s") from e
        if check and run.returncode != 0:
            raise ContainerError(
                f"podman-compose {' '.join(args)} exited {run.returncode}:\n"
                f"{run.stdout[-6000:]}\n{quiet(run.stderr)[-4000:]}"
            )
        return run

    def container(self, service: str) -> str:
        """The name of the service's (one) container."""
        names = containers(self.project, service)
        if len(names) != 1:
            raise ContainerError(f"{self.project}: {len(names)} containers for {service}: {names}")
        return names[0]

    def wait_healthy(self, service: str, timeout: float) -> float:
        """podman 4.3 runs no healthcheck timers without systemd: run the check until it
        passes (what `depends_on: condition: service_healthy` would wait for)."""
        name = self.container(service)

        def probe() -> str | None:
            run = podman("healthcheck", "run", name, check=False, timeout=60)
            if run.returncode == 0:
                return None
            state = podman("inspect", name, "--format", "{{.State.Status}}", check=False)
            if state.stdout.strip() in ("exited", "stopped"):
                logs = podman("logs", name, check=False).stdout[-3000:]
                raise ContainerError(f"{name} exited before it was healthy:\n{logs}")
            return (run.stdout + quiet(run.stderr)).strip() or f"exit {run.returncode}"

        return wait_until(f"{name} healthy", probe, timeout)

    def network_gateway(self) -> str:
        name = f"{self.project}_default"
        info = json.loads(podman("network", "inspect", name).stdout)[0]
        return info["subnets"][0]["gateway"]


def containers(project: str, service: str | None = None, running: bool = False) -> list[str]:
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label={PROJECT_LABEL}={project}"]
    if not running:
        args.insert(1, "-a")
    if service:
        args += ["--filter", f"label={SERVICE_LABEL}={service}"]
    return podman(*args).stdout.split()


def leftovers(project: str) -> dict[str, list[str]]:
    """What is left of a project: containers, volumes, networks, pods."""
    label = f"label={PROJECT_LABEL}={project}"
    vols = podman("volume", "ls", "-q", "--filter", label).stdout.split()
    # named volumes are "<project>_<name>"; also catch any that lost their label
    vols += [
        v for v in podman("volume", "ls", "-q").stdout.split()
        if v.startswith(project + "_") and v not in vols
    ]  # fmt: skip
    nets = [
        n for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split()
        if n.startswith(project + "_")
    ]  # fmt: skip
    pods = [
        p for p in podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
        if p == f"pod_{project}"
    ]  # fmt: skip
    return {"containers": containers(project), "volumes": vols, "networks": nets, "pods": pods}


def remove_project(project: str, compose: Compose | None = None) -> None:
    """Best effort, in order: `podman-compose down -v`, then podman itself for anything left."""
    if compose is not None:
        with contextlib.suppress(Exception):
            compose("down", "-v", "-t", "2", timeout=120, check=False)
    with contextlib.suppress(Exception):
        left = leftovers(project)
        if left["containers"]:
            podman("rm", "-f", "-v", "-t", "2", *left["containers"], check=False)
        if left["pods"]:
            podman("pod", "rm", "-f", *left["pods"], check=False)
        if left["volumes"]:
            podman("volume", "rm", "-f", *left["volumes"], check=False)
        if left["networks"]:
            podman("network", "rm", "-f", *left["networks"], check=False)


def sweep_stale_projects(prefix: str) -> list[str]:
    """Remove projects named ``{prefix}{pid}-...`` whose test process is gone: what a run that
    was killed outright (no ``finally``) left behind."""
    run = podman("ps", "-a", "--format", f'{{{{index .Labels "{PROJECT_LABEL}"}}}}', check=False)
    names = set(run.stdout.split())
    names |= {v.split("_", 1)[0] for v in podman("volume", "ls", "-q", check=False).stdout.split()}
    swept = []
    for name in sorted(names):
        m = re.fullmatch(re.escape(prefix) + r"(\d+)-\w+", name)
        if m and not pid_alive(int(m.group(1))):
            remove_project(name)
            swept.append(name)
    return swept


def run_image(image: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` (anonymous volumes go with the container)."""
    return podman("run", "--rm", image, *cmd, timeout=timeout)
