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
