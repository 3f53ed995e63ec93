"""Several "hosts" on one machine: network namespaces on a bridge (../shared/notes/netns.md).

``Network`` makes a bridge ``tlcbr<k>`` with 10.213.<k>.1/24 on the machine side, where the
shared services listen (PostgreSQL, fake-gcs-server, the BigQuery emulator, the TLC mirror),
and one namespace per host, cabled to the bridge by a veth pair, at 10.213.<k>.<n>. Each host
runs its commands under its own UTS namespace too (``unshare --uts``), so Luigi and the lake
see a host name of its own. Traffic goes only to these addresses. Everything is removed on
exit, also when a test fails; names carry the pid, so a crashed run breaks no later one.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "iproute2's `ip` or util-linux's `unshare` is missing"
    probe = f"tlcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    name: str  # the namespace, and the host name its processes see
    addr: str
    network: Network
    procs: list[subprocess.Popen] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as this host runs it: in its namespace, under its own host name."""
        script = f'hostname {shlex.quote(self.name)} && exec "$@"'
        return ["ip", "netns", "exec", self.name, "unshare", "--uts", "sh", "-c", script,
                "sh", *argv]  # fmt: skip

    def popen(self, argv: Sequence[str], **kw: object) -> subprocess.Popen:
        """Start ``argv`` on this host in a process group of its own (``kill()`` ends it)."""
        proc = subprocess.Popen(self.command(argv), start_new_session=True, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), **kw)  # type: ignore[call-overload]

    def kill(self) -> None:
        """kill -9 every process this host started: the host is gone."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait()

    def throttle(self, mbit: float) -> None:
        """Limit what this host receives to ``mbit`` Mbit/s (tc on the machine's end of its
        cable), like a VM's network share."""
        _ip("link", "show", self.network.cable(self))  # exists
        subprocess.run(
            ["tc", "qdisc", "replace", "dev", self.network.cable(self), "root", "tbf",
             "rate", f"{mbit}mbit", "burst", "64kb", "latency", "100ms"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip


class Network:
    def __init__(self) -> None:
        self.k = 1 + os.getpid() % 250
        self.bridge = f"tlcbr{self.k}"
        self.gateway = f"10.213.{self.k}.1"
        self.hosts: list[Host] = []

    def cable(self, host: Host) -> str:
        return f"tlc{self.k}v{self.hosts.index(host)}"

    def __enter__(self) -> Network:
        self._cleanup()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str) -> Host:
        n = len(self.hosts) + 10
        ns = f"tlc{self.k}-{name}"
        host = Host(ns, f"10.213.{self.k}.{n}", self)
        self.hosts.append(host)
        cable = self.cable(host)
        _ip("netns", "add", ns)
        _ip("link", "add", cable, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", cable, "master", self.bridge, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{host.addr}/24", "dev", "eth0")
        _ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        return host

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            host.kill()
        self._cleanup()

    def _cleanup(self) -> None:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in listed.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"tlc{self.k}-"):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for i in range(16):
            subprocess.run(["ip", "link", "del", f"tlc{self.k}v{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@contextlib.contextmanager
def network() -> Iterator[Network]:
    with Network() as net:
        yield net


def workdir_of(root: Path, host: Host) -> Path:
    d = root / host.name
    d.mkdir(parents=True, exist_ok=True)
    return d
