"""``tlc-luigid``: Luigi's central scheduler, reading luigi.toml, and surviving ``kill -9``.

    tlc-luigid --port 8082 --state-path data/luigid/state.pickle --logdir data/luigid

Two differences from a plain ``luigid``, with the same arguments:

- It reads the package's configuration layers (pipeline/orchestration/defaults.toml,
  luigi.toml): plain ``luigid`` never imports this package, so it would ignore luigi.toml
  (luigi#2907) and with it ``[scheduler] retry_delay``, ``batch_emails`` and the rest.
- With ``--state-path`` it also saves the scheduler's state every few seconds, atomically
  (a temporary file renamed over the old one). luigid itself saves only when it is stopped
  cleanly (SIGTERM); after ``kill -9`` or a lost VM it would start empty, and the workers of
  a running backfill, finding their tasks unknown, would stop with them "not run". Restored
  from a checkpoint a few seconds old, it knows their tasks, and they carry on (their calls
  to luigid are retried for ~30 s, ``[core] rpc-retry-*``).

It also creates ``--logdir`` and the state file's folder, which luigid expects to exist.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
from pathlib import Path

CHECKPOINT_SECONDS = 5.0

log = logging.getLogger("luigi.server")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("LUIGI_CONFIG_PARSER", "toml")
    import luigi.configuration
    import luigi.process
    import luigi.server
    from luigi.scheduler import Scheduler
    from luigi.setup_logging import DaemonLogging

    import pipeline  # noqa: F401  (the package's configuration layers)

    p = argparse.ArgumentParser(prog="tlc-luigid", description="Central luigi server")
    p.add_argument("--background", action="store_true", help="Run in background mode")
    p.add_argument("--pidfile", help="Write pidfile")
    p.add_argument("--logdir", help="log directory (created if missing)")
    p.add_argument("--state-path", help="Pickled state file (checkpointed every few seconds)")
    p.add_argument("--address", help="Listening interface")
    p.add_argument("--unix-socket", help="Unix socket path")
    p.add_argument("--port", default=8082, help="Listening port")
    opts = p.parse_args(sys.argv[1:] if argv is None else argv)

    if opts.logdir:
        Path(opts.logdir).mkdir(parents=True, exist_ok=True)
    if opts.state_path:
        Path(opts.state_path).parent.mkdir(parents=True, exist_ok=True)
        luigi.configuration.get_config().set("scheduler", "state_path", opts.state_path)
    DaemonLogging.setup(opts)

    def serve(
        api_port: int | str = 8082, address: str | None = None, unix_socket: str | None = None
    ) -> None:
        scheduler = Scheduler()
        if opts.state_path:
            _checkpoint_every(scheduler, Path(opts.state_path), CHECKPOINT_SECONDS)
        luigi.server.run(
            api_port=api_port, address=address, unix_socket=unix_socket, scheduler=scheduler
        )

    if opts.background:
        luigi.process.daemonize(
            serve,
            api_port=opts.port,
            address=opts.address,
            pidfile=opts.pidfile,
            logdir=opts.logdir,
            unix_socket=opts.unix_socket,
        )
    else:
        serve(api_port=opts.port, address=opts.address, unix_socket=opts.unix_socket)


def _checkpoint_every(scheduler: object, path: Path, seconds: float) -> None:
    """Save the state like luigid's own dump (same pickle, so it loads it), but atomically and
    on a timer. Runs on the server's event loop, between requests, so the state is still."""
    import tornado.ioloop

    def checkpoint() -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                # Luigi offers no public snapshot; SimpleTaskState.dump() pickles exactly this.
                pickle.dump(getattr(scheduler, "_state").get_state(), f)  # noqa: B009
            os.replace(tmp, path)
        except OSError as e:
            log.warning("checkpoint of the scheduler state to %s failed: %s", path, e)
            tmp.unlink(missing_ok=True)

    tornado.ioloop.PeriodicCallback(checkpoint, seconds * 1000).start()


if __name__ == "__main__":
    main()
