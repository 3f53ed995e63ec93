"""Where a PostgreSQL sink connects, and how, without the password ever reaching a message."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psycopg2
import psycopg2.extensions

from pipeline.domain.errors import PipelineError


@dataclass(frozen=True)
class PgConn:
    """Where to connect. ``None`` leaves a setting to libpq (PG* variables, .pgpass, socket)."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: int = 10

    @classmethod
    def resolve(
        cls,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        connect_timeout: int = 10,
        environ: dict[str, str] | None = None,
    ) -> PgConn:
        """libpq's variables win over the given (config file) values, as the docs promise."""
        env = dict(os.environ) if environ is None else environ
        return cls(
            host=env.get("PGHOST") or host or None,
            port=int(env.get("PGPORT") or port or 5432),
            database=env.get("PGDATABASE") or database or None,
            user=env.get("PGUSER") or user or None,
            password=env.get("PGPASSWORD") or password or None,
            connect_timeout=connect_timeout,
        )

    def kwargs(self) -> dict[str, str]:
        out = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
        }
        secret = {k: str(v) for k, v in out.items() if v is not None}  # libpq takes text
        return {**secret, **self.options()}

    def options(self) -> dict[str, str]:
        """libpq's settings that are not where or who: bounded connects, and TCP keepalives
        so that a server that vanished (a VM gone, a NAT that dropped the flow) is noticed in
        about a minute instead of the kernel's two hours, which would hold a load, or a
        waiter on its month's lock, that long."""
        return {
            "connect_timeout": str(self.connect_timeout),
            "keepalives": "1",
            "keepalives_idle": "30",
            "keepalives_interval": "10",
            "keepalives_count": "3",
            "application_name": "tlc-pipeline",
        }

    def describe(self) -> str:
        """For messages: never the password."""
        host = self.host or os.environ.get("PGHOST") or "local socket"
        return f"{self.user or '(libpq default user)'}@{host}:{self.port}/{self.database}"

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text

    def connect(self) -> psycopg2.extensions.connection:
        try:
            conn = psycopg2.connect(psycopg2.extensions.make_dsn(**self.kwargs()))
        except psycopg2.Error as e:
            why = " ".join(self.scrub(str(e)).split())  # libpq adds a hint on a second line
            raise PipelineError(f"PostgreSQL {self.describe()}: cannot connect: {why}") from None
        conn.set_client_encoding("utf-8")
        return conn
