"""A real luigid on a free port, and a small client for its JSON API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.tlc_server import free_port


class Luigid:
    def __init__(self, workdir: Path, config: Path | None = None):
        """``config``: a TOML file for luigid's [scheduler] settings (LUIGI_CONFIG_PATH)."""
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(workdir / "luigid.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "tlc-luigid"),
                "--address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--state-path",
                str(workdir / "state.pickle"),
                "--logdir",
                str(workdir),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **({"LUIGI_CONFIG_PATH": str(config)} if config else {})},
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
        url = f"http://127.0.0.1:{self.port}/api/{method}?{query}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["response"]

    def tasks(self, status: str) -> dict[str, dict[str, Any]]:
        return self.api("task_list", {"status": status, "upstream_status": "", "search": ""})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
