"""A PostgreSQL server for the tests, found or started, never mocked.

In this order:

1. ``PG*`` variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, ...) when any is set: that server.
2. 127.0.0.1:5432 as user ``postgres`` (what this project's machines run).
3. A throwaway cluster from ``pg_ctl``/``initdb`` under ``/usr/lib/postgresql/*/bin`` (Debian and
   Ubuntu's ``postgresql`` package), on a free port, in a temp folder, removed at the end. As
   root it runs as the ``postgres`` system user, because PostgreSQL refuses to run as root.
4. Otherwise the session fails with what to install.

Each test session then creates its own database, exports it as PGDATABASE (so subprocesses and
the pipeline's own PG* handling use it), and drops it at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from pipeline.sinks.postgres.warehouse import PgConn
from tests.support.tlc_server import free_port

PG_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGPASSFILE", "PGDATABASE")
INSTALL_HINT = (
    "No PostgreSQL server for the tests. Set PGHOST/PGPORT/PGUSER (and PGPASSWORD) to one, "
    "run one on 127.0.0.1:5432 for user postgres, or install the server binaries so the "
    "tests can start a throwaway cluster: sudo apt-get install postgresql"
)


def _can_connect(**kwargs: object) -> str | None:
    try:
        psycopg2.connect(**{**kwargs, "connect_timeout": 3}).close()
        return None
    except psycopg2.Error as e:
        return str(e).strip()


@contextlib.contextmanager
def server() -> Iterator[PgConn]:
    """Yield admin connection settings (database ``postgres``) for a reachable server."""
    if any(os.environ.get(v) for v in PG_VARS):
        pg = PgConn.resolve(database="postgres", environ={**os.environ, "PGDATABASE": ""})
        err = _can_connect(**pg.kwargs())
        if err:
            raise RuntimeError(f"PG* variables are set but the server refuses: {err}")
        yield pg
        return
    local = PgConn(host="127.0.0.1", port=5432, database="postgres", user="postgres")
    if _can_connect(**local.kwargs()) is None:
        yield local
        return
    with _throwaway_cluster() as pg:
        yield pg


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster of the test's own, which a test may restart."""

    conn: PgConn
    run_as: list[str]
    bindir: Path
    data: Path
    log: Path

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        """Fast restart: every backend is terminated, as on a server reboot or failover."""
        self.pg_ctl("-l", str(self.log), "-m", "fast", "-w", "restart")


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[PgConn]:
    with throwaway_cluster() as cluster:
        yield cluster.conn


@contextlib.contextmanager
def throwaway_cluster(listen: str = "127.0.0.1") -> Iterator[Cluster]:
    """Start a cluster with initdb/pg_ctl on a free port in a temp folder; remove it after."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    pg_ctl = bins[-1] if bins else shutil.which("pg_ctl")
    if not pg_ctl:
        raise RuntimeError(INSTALL_HINT)
    bindir = Path(pg_ctl).parent
    run_as: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="tlc-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root and there is no 'postgres' user to run a throwaway "
                f"cluster as. {INSTALL_HINT}"
            ) from None
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", free_port()
    cluster = Cluster(
        PgConn(host=listen.split(",")[0], port=port, database="postgres", user="postgres"),
        run_as,
        bindir,
        data,
        tmp / "log",
    )
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\nunix_socket_directories = '{tmp}'\n")
            conf.write(f"listen_addresses = '{listen}'\n")
        if listen != "127.0.0.1":
            with open(data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")
        cluster.pg_ctl("-l", str(cluster.log), "-w", "start")
        yield cluster
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def create_database(admin: PgConn) -> str:
    name = f"tlc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = admin.connect()
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(admin: PgConn, name: str) -> None:
    conn = admin.connect()
    conn.autocommit = True
    cur = conn.cursor()
    for _ in range(50):  # connections of killed workers take a moment to go
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        try:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            break
        except psycopg2.errors.ObjectInUse:
            time.sleep(0.1)
    conn.close()
