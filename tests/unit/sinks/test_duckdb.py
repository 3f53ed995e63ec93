"""The DuckDB sink's identifiers, on an in-memory database."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.domain import catalog
from pipeline.domain.errors import BadParameter
from pipeline.sinks.duckdb import ident, table_ddl


def test_identifiers_are_quoted_and_colours_checked():
    assert ident('a"; DROP TABLE x; --') == '"a""; DROP TABLE x; --"'
    with pytest.raises(BadParameter, match="unknown colour"):
        catalog.trips_table('green"; DROP TABLE green_trips; --')
    con = duckdb.connect()
    con.execute(table_ddl('we"ird', [(f.name, f.type) for f in catalog.arrow_schema("fhv")]))
    assert con.execute('SELECT count(*) FROM "we""ird"').fetchone() == (0,)
