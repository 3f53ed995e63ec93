"""``functools.cache`` for clients that hold network connections: one value per process.

Luigi runs each task of a run with ``--workers N`` in a forked process. A child that used the
client its parent made (for the ``complete()`` checks, say) would share the parent's
keep-alive connections with the parent and with its sibling tasks: several processes' requests
on one socket, and answers read by the wrong process (plain HTTP, as to an emulator), or one
TLS stream advanced by two processes (which GCS resets). So each process makes its own. The
parent's client stays in the child, unused and never closed there: closing it would close
connections that the parent still uses.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class per_process(Generic[P, T]):  # noqa: N801 - used as a decorator, like functools.cache
    """Cache ``fn``'s value per process id and arguments (which must be hashable)."""

    def __init__(self, fn: Callable[P, T]):
        self._fn = fn
        self._values: dict[Hashable, T] = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        key = (os.getpid(), args, tuple(sorted(kwargs.items())))
        try:
            return self._values[key]
        except KeyError:
            # Two threads may both make one; the second is kept: harmless, and no lock that a
            # fork could copy while another thread holds it.
            value = self._values[key] = self._fn(*args, **kwargs)
            return value

    def cache_clear(self) -> None:
        """Forget every value (tests that point the clients elsewhere)."""
        self._values.clear()
