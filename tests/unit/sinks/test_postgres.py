"""The PostgreSQL sink's parts that need no server: colours checked before any SQL, where the
connection settings come from, and how a COPY is split across connections."""

from __future__ import annotations

import itertools

import pytest

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter
from pipeline.orchestration.tasks import LoadPostgres
from pipeline.sinks.postgres import PgConn
from pipeline.sinks.postgres.copy import split


def test_hostile_colour_is_rejected_before_any_sql():
    with pytest.raises(BadParameter, match="unknown colour"):
        catalog.trips_table("green_trips; DROP TABLE x; --")
    with pytest.raises(Exception, match="green"):
        LoadPostgres(color='green"; DROP TABLE x; --', year=2021, month=1)


def test_pg_variables_win_over_the_config_file():
    env = {"PGHOST": "db.example", "PGPORT": "6543", "PGDATABASE": "d", "PGUSER": "u"}
    pg = PgConn.resolve("h", 5432, "ny_taxi", "postgres", "from-file", environ=env)
    assert (pg.host, pg.port, pg.database, pg.user) == ("db.example", 6543, "d", "u")
    assert pg.password == "from-file"
    pg = PgConn.resolve("h", 5432, "ny_taxi", "postgres", "from-file", environ={"PGPASSWORD": "e"})
    assert (pg.host, pg.port, pg.database, pg.user, pg.password) == (
        "h",
        5432,
        "ny_taxi",
        "postgres",
        "e",
    )
    assert "from-file" not in repr(PgConn(password="from-file"))
    assert "from-file" not in PgConn(user="u", password="from-file").describe()


def test_split_covers_every_row_once():
    for rows in (0, 1, 2, 3, 1_000_001):
        for parts in (1, 2, 3):
            ranges = split(rows, parts)
            assert sum(hi - lo for lo, hi in ranges) == rows
            assert all(hi > lo for lo, hi in ranges)
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
            if ranges:
                assert ranges[0][0] == 0
                assert ranges[-1][1] == rows
                assert len(ranges) == min(parts, rows)


def test_names_postgresql_would_cut_are_refused():
    """63 bytes at most: a longer table name cut by PostgreSQL would give two months' stages
    (and partitions) one name, and a stage of 63 bytes would share its name with its index."""
    from pipeline.sinks.postgres import PostgresWarehouse, ddl

    table = "t" * 48
    PostgresWarehouse(PgConn(), "public", table=table)  # its stage: 62 bytes
    stage = f"_stage_{table}_202101"
    assert len(stage) == 62
    assert ddl.index_name(stage, "pickup_datetime") != stage
    with pytest.raises(BadParameter, match=r"table name 'tttt.*' is too long: at most 48 bytes"):
        PostgresWarehouse(PgConn(), "public", table="t" * 49)
    with pytest.raises(BadParameter, match="at most 48 bytes"):
        PostgresWarehouse(PgConn(), "public", table="é" * 25)  # 50 bytes in 25 characters
    PostgresWarehouse(PgConn(), "s" * 63)
    with pytest.raises(BadParameter, match=r"schema name 's*' is too long: at most 63 bytes"):
        PostgresWarehouse(PgConn(), "s" * 64)


def test_connections_are_bounded_and_keep_alive():
    """libpq's own settings, for psycopg2 and DuckDB's ATTACH alike: a connect gives up after
    connect_timeout, and a server that vanished is noticed in about a minute (30 s idle, then
    3 probes 10 s apart), not the kernel's two hours."""
    conn = PgConn(host="db", password="pw", connect_timeout=7)
    options = conn.options()
    assert options["connect_timeout"] == "7"
    assert (options["keepalives"], options["keepalives_idle"]) == ("1", "30")
    assert (options["keepalives_interval"], options["keepalives_count"]) == ("10", "3")
    assert "pw" not in options.values(), "the ATTACH string, which DuckDB quotes, has no secret"
    assert conn.kwargs() == {"host": "db", "password": "pw", **options}
