"""pipeline.util.per_process: one value per process, so a forked task never uses its parent's
client (tests/integration/lake/test_gcs.py shows what sharing one does)."""

from __future__ import annotations

import multiprocessing as mp
import os

from pipeline.util.per_process import per_process

made: list[tuple[int, str]] = []


@per_process
def client(name: str) -> tuple[int, str]:
    made.append((os.getpid(), name))
    return (os.getpid(), name)


def _in_child(q: mp.Queue) -> None:
    q.put((client("a"), client("a"), len(made)))


def test_one_value_per_process_and_arguments():
    client.cache_clear()
    made.clear()
    first = client("a")
    assert client("a") is first
    assert client("b") is not first
    assert made == [(os.getpid(), "a"), (os.getpid(), "b")]

    ctx = mp.get_context("fork")  # as Luigi runs a task with --workers N
    q = ctx.Queue()
    p = ctx.Process(target=_in_child, args=(q,))
    p.start()
    try:
        one, again, count = q.get(timeout=60)
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    assert one == (p.pid, "a"), "the child made its own"
    assert again == one
    assert count == 3  # the parent's two, which the child keeps but never uses, and its own
    assert client("a") is first  # the parent's is untouched

    client.cache_clear()
    assert client("a") is not first
