"""A real luigid on a free port, and a small client for its JSON API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.tlc_server import free_port


class Luigid:
    def __init__(
        self,
        workdir: Path,
        config: Path | None = None,
        plain: bool = False,
        port: int = 0,
        address: str = "127.0.0.1",
        wrap: Callable[[list[str]], list[str]] | None = None,
    ):
        """``config``: a TOML file for luigid's [scheduler] settings (LUIGI_CONFIG_PATH).
        ``plain``: Luigi's own ``luigid`` as its docs start it, on Luigi's defaults (no
        luigi.toml, no package defaults), instead of ``tlc-luigid``. ``address`` and
        ``wrap`` (a command prefix: a host's namespace, tests/support/hosts.py) put it
        elsewhere than on loopback."""
        self.port = port or free_port()
        self.workdir = workdir
        self.config, self.plain = config, plain
        self.address, self.wrap = address, wrap or (lambda argv: argv)
        workdir.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        workdir, config = self.workdir, self.config
        env = {**os.environ, **({"LUIGI_CONFIG_PATH": str(config)} if config else {})}
        if self.plain:
            env = {k: v for k, v in env.items() if not k.startswith("LUIGI_CONFIG")}
        self.log = open(workdir / "luigid.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.wrap(
                [
                    str(Path(sys.executable).parent / ("luigid" if self.plain else "tlc-luigid")),
                    "--address",
                    self.address,
                    "--port",
                    str(self.port),
                    "--state-path",
                    str(workdir / "state.pickle"),
                    "--logdir",
                    str(workdir),
                ]
            ),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,  # no luigi.toml here: a plain luigid sees Luigi's defaults only
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.api("ping", {"worker": "probe"})
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"luigid did not start: {(workdir / 'luigid.log').read_text()}"
                    ) from None
                time.sleep(0.1)

    def api(self, method: str, data: dict[str, Any]) -> Any:
        query = urllib.parse.urlencode({"data": json.dumps(data)})
        url = f"http://{self.address}:{self.port}/api/{method}?{query}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["response"]

    def tasks(self, status: str) -> dict[str, dict[str, Any]]:
        return self.api("task_list", {"status": status, "upstream_status": "", "search": ""})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()

    def kill(self) -> None:
        """kill -9: no state is saved beyond what luigid wrote to --state-path before."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()

    def task_status(self, task_id: str) -> str | None:
        found = self.api("task_search", {"task_str": task_id})
        for status, tasks in found.items():
            if task_id in tasks:
                return status
        return None
