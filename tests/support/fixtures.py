"""Shared fixtures: the real TLC files, a local TLC server, and a pipeline configured for them;
PostgreSQL, the GCS and BigQuery emulators, and luigid. tests/conftest.py registers this module
(``pytest_plugins``) and marks each test by the services its fixtures start."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import luigi
import luigi.execution_summary
import pytest
from luigi.configuration import LuigiTomlParser
from luigi.task_register import Register

import pipeline  # noqa: F401  (selects the TOML parser before any config is read)
from pipeline.lake.lake import Lake
from pipeline.lake.store import ObjectInfo
from pipeline.orchestration import config
from pipeline.sinks.postgres.warehouse import PgConn, PostgresWarehouse
from tests.support import gcp_emulators
from tests.support import pg as pgserver
from tests.support.luigid import Luigid
from tests.support.tlc_server import RefusedPorts, TLCServer

REPO = Path(__file__).resolve().parents[2]
TLC = REPO.parent / "shared" / "data" / "tlc"
ZONES_FILE = TLC / "lookup" / "taxi+_zone_lookup.csv"


def require_tlc_data() -> Path:
    """The real files are the truth; without them the data tests cannot say anything."""
    if not TLC.is_dir():
        pytest.skip(
            f"REAL TLC DATA MISSING: {TLC} does not exist. Check out shared/ beside this repo; "
            "these tests are required in CI.",
        )
    return TLC


@pytest.fixture
def tlc() -> Path:
    return require_tlc_data()


@pytest.fixture
def refused_port() -> Iterator[RefusedPorts]:
    """``refused_port()``: a 127.0.0.1 port where connections are refused, until the test ends."""
    ports = RefusedPorts()
    yield ports
    ports.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TLCServer]:
    srv = TLCServer(tmp_path / "cdn").start()
    if ZONES_FILE.exists():
        srv.publish("/misc/taxi_zone_lookup.csv", ZONES_FILE)
    yield srv
    srv.stop()


# Luigi's FAILURE events, so tests can assert on the one error a task raised.
_FAILURES: list[tuple[luigi.Task, BaseException]] = []


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task: luigi.Task, exc: BaseException) -> None:
    _FAILURES.append((task, exc))


@dataclass
class PipelineEnv:
    root: Path
    server: TLCServer
    config_path: Path
    sections: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def duckdb(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def failures(self) -> list[tuple[luigi.Task, BaseException]]:
        return _FAILURES

    def configure(self, **sections: dict[str, object]) -> None:
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        self.config_path.write_text(_to_toml(self.sections))
        LuigiTomlParser.reload()
        Register.clear_instance_cache()

    def build(self, *tasks: luigi.Task) -> bool:
        _FAILURES.clear()
        return luigi.build(list(tasks), local_scheduler=True, log_level="WARNING")

    def build_detailed(self, *tasks: luigi.Task) -> luigi.execution_summary.LuigiRunResult:
        _FAILURES.clear()
        return luigi.build(
            list(tasks), local_scheduler=True, log_level="WARNING", detailed_summary=True
        )

    def env(self) -> dict[str, str]:
        """Environment for a subprocess `luigi` run against this configuration."""
        env = dict(os.environ)
        env["LUIGI_CONFIG_PATH"] = str(self.config_path)
        env.pop("LUIGI_CONFIG_PARSER", None)  # prove the package selects TOML by itself
        return env

    def lake_files(self) -> list[Path]:
        return sorted(p for p in self.lake.rglob("*") if p.is_file()) if self.lake.exists() else []

    @property
    def lake_root(self) -> str:
        return str(self.sections["lake"]["root"])

    def the_lake(self) -> Lake:
        """The configured lake (a folder, or gs:// for the lake_env fixture's GCS run)."""
        return config.lake().get()

    def lake_objects(self) -> dict[str, ObjectInfo]:
        """Every object in the lake, temporaries and upload pieces included, by name."""
        lake = self.the_lake()
        if lake.store.local_path("") is None:
            return {i.name: i for i in lake.store.list_objects("")}
        root = Path(self.lake_root)
        return {
            p.relative_to(root).as_posix(): ObjectInfo(
                p.relative_to(root).as_posix(), p.stat().st_size,
                dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC),
            )
            for p in (root.rglob("*") if root.exists() else []) if p.is_file()
        }  # fmt: skip


def _to_toml(sections: dict[str, dict[str, object]]) -> str:
    out = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        for k, v in values.items():
            if isinstance(v, list | tuple):
                out.append(f"{k} = {json.dumps(list(v))}")
            elif isinstance(v, bool):
                out.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, int | float):
                out.append(f"{k} = {v}")
            else:
                out.append(f'{k} = "{v}"')
    return "\n".join(out) + "\n"


@pytest.fixture
def env(tmp_path: Path, server: TLCServer) -> Iterator[PipelineEnv]:
    """A pipeline whose source is the local TLC server and whose lake/warehouse are in tmp."""
    e = PipelineEnv(tmp_path, server, tmp_path / "test.toml")
    LuigiTomlParser._config_paths.append(str(e.config_path))
    e.configure(
        source={
            "format": "parquet",
            "parquet_url": server.parquet_template,
            "csv_url": server.csv_template,
            "zones_url": server.zones_url,
            "attempts": 3,
            "backoff": 0.01,
            "connect_timeout": 2.0,
            "read_timeout": 2.0,
        },
        lake={"root": str(e.lake)},
        duckdb={"path": str(e.duckdb)},
    )
    yield e
    LuigiTomlParser._config_paths.remove(str(e.config_path))
    LuigiTomlParser.reload()
    Register.clear_instance_cache()


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.gcp)])
def lake_env(request: pytest.FixtureRequest, env: PipelineEnv) -> PipelineEnv:
    """``env`` twice: with the lake in a folder, and with it on GCS (the emulator), so the
    same task tests show both kinds of lake behave the same."""
    if request.param == "gcs":
        bucket = request.getfixturevalue("gcs_bucket")
        env.configure(lake={"root": f"gs://{bucket}/lake"})
    return env


# --- PostgreSQL: a real server (tests/support/pg.py), one database per session, one schema per test
@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgConn]:
    """Settings for this session's own database, also exported as PG* for subprocesses."""
    try:
        server_cm = pgserver.server()
        admin = server_cm.__enter__()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    name = pgserver.create_database(admin)
    saved = {v: os.environ.get(v) for v in pgserver.PG_VARS}
    exported = {"PGHOST": admin.host, "PGPORT": admin.port, "PGUSER": admin.user}
    exported["PGDATABASE"] = name
    for var, value in exported.items():
        if value is not None:
            os.environ[var] = str(value)
    try:
        yield PgConn(admin.host, admin.port, name, admin.user, admin.password)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        pgserver.drop_database(admin, name)
        server_cm.__exit__(None, None, None)


@pytest.fixture
def pg(pg_database: PgConn, request: pytest.FixtureRequest) -> Iterator[PostgresWarehouse]:
    """A warehouse in a schema of this test's own."""
    schema = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + os.urandom(3).hex()
    yield PostgresWarehouse(pg_database, schema)
    conn = pg_database.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # the ledger lives in it too
    cur.execute("SELECT to_regclass('table_updates')")
    if cur.fetchone()[0]:  # a test of the migration from Luigi's markers made some
        cur.execute("DELETE FROM table_updates WHERE update_id LIKE %s", [schema + ".%"])
    conn.close()


def pg_query(pg: PostgresWarehouse, query: str, params: list | None = None) -> list[tuple]:
    conn = pg.pg.connect()
    try:
        cur = conn.cursor()
        cur.execute(query, params or [])
        return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def pg_env(env: PipelineEnv, pg: PostgresWarehouse) -> PipelineEnv:
    """The pipeline configured to load this test's Postgres schema."""
    c = pg.pg
    env.configure(
        postgres={
            "host": c.host,
            "port": c.port,
            "database": c.database,
            "user": c.user,
            "schema": pg.schema,
        }
    )
    return env


# --- GCS and BigQuery emulators (tests/support/gcp_emulators.py), one of each per session -----
@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gcp_emulators.FakeGCS]:
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    with gcp_emulators.fake_gcs(tmp_path_factory.mktemp("fake-gcs")) as gcs:
        # The storage client reads this when it is made; the pipeline makes one per process.
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        try:
            yield gcs
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.fixture(scope="session")
def local_bigquery(
    fake_gcs: gcp_emulators.FakeGCS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gcp_emulators.LocalBigQuery]:
    try:
        cm = gcp_emulators.local_bigquery(tmp_path_factory.mktemp("local-bq"), fake_gcs.root)
        bq = cm.__enter__()
    except RuntimeError as e:  # no Python 3.13, or the emulator would not start: fail loudly
        pytest.fail(str(e), pytrace=False)
    try:
        yield bq
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def gcs_bucket(fake_gcs: gcp_emulators.FakeGCS) -> str:
    from google.cloud import storage

    name = f"tlc-test-{uuid.uuid4().hex[:12]}"
    storage.Client(project=gcp_emulators.PROJECT).create_bucket(name)
    return name


@pytest.fixture
def bq_dataset(local_bigquery: gcp_emulators.LocalBigQuery) -> str:
    return f"tlc_test_{uuid.uuid4().hex[:12]}"  # the pipeline creates it on first use


# --- luigid: a real tlc-luigid of the test's own (tests/support/luigid.py) --------------------
@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[Luigid]:
    d = Luigid(tmp_path / "luigid")  # tlc-luigid on the package's shipped defaults
    yield d
    d.stop()
