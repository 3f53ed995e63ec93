"""Named points where a test can stop a real process and kill it there (``kill -9``).

Crash safety is claimed for every step of a month: a worker killed anywhere leaves nothing
that looks complete, and a plain rerun converges. To test that claim at exact places rather
than by chance timing, the code marks its risky moments with ``failpoint("name")``. When the
environment names that point (``TLC_FAILPOINT=name``), the process that reaches it writes
``$TLC_FAILPOINT_DIR/name.<pid>`` and then waits for a signal, so the test sees it arrive (a
file, not a sleep) and kills it. ``TLC_FAILPOINT=name@N`` stops at the point's Nth visit
(a point inside a loop, e.g. once several upload pieces are up). Unset, which is always the
case outside the tests, a call is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "TLC_FAILPOINT"
DIR_ENV = "TLC_FAILPOINT_DIR"


_visits: dict[str, int] = {}


def failpoint(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted is None or not wanted.startswith(name):
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _visits[name] = _visits.get(name, 0) + 1
    if nth and _visits[name] < int(nth):
        return
    folder = Path(os.environ.get(DIR_ENV, "."))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.{os.getpid()}").write_text(f"{os.getpid()}\n")
    while True:  # until the test's SIGKILL; any other signal is ignored here
        signal.pause()
