"""The views with the TLC's names, as each sink writes them: every canonical column once under
its TLC name, every name a quoted identifier, and a hostile name unable to inject. DuckDB's runs
on an in-memory database; PostgreSQL's is checked as psycopg2 composes it (its rendering needs a
server: tests/integration/sinks/test_course_views.py); BigQuery's as the text a job would send."""

from __future__ import annotations

import duckdb
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from psycopg2 import sql

from pipeline.domain import catalog
from pipeline.domain.errors import PipelineError
from pipeline.sinks.bigquery.warehouse import BigQueryWarehouse
from pipeline.sinks.duckdb import table_ddl, view_ddl
from pipeline.sinks.postgres import ddl

HOSTILE = catalog.TlcView(
    'v"; DROP TABLE t; --',
    "t",
    (('a"b', 'x"; DROP TABLE t; --'), ("c", "Café Name")),
)


def select_list(text: str, view: catalog.TlcView, quote: str) -> list[str]:
    head = "CREATE OR REPLACE VIEW "
    assert text.startswith(head)
    _, _, rest = text.partition(" AS SELECT ")
    items, _, source = rest.rpartition(" FROM ")
    assert source.endswith(f"{view.table}{quote}"), source
    return items.split(", ")


@pytest.mark.parametrize("view", catalog.tlc_views(), ids=lambda v: v.name)
def test_duckdb_view_shows_every_column_once_under_its_tlc_name(view: catalog.TlcView):
    text = view_ddl(view)
    assert select_list(text, view, '"') == [f'"{c}" AS "{n}"' for c, n in view.columns]
    con = duckdb.connect()
    schema = catalog.ZONES_SCHEMA if view.table == "taxi_zones" else None
    color = view.table.removesuffix("_trips")
    fields = schema or catalog.arrow_schema(color)
    con.execute(table_ddl(view.table, [(f.name, f.type) for f in fields]))
    con.execute(text)
    con.execute(text)  # idempotent
    shown = con.execute(f'DESCRIBE "{view.name}"').fetchall()
    table = con.execute(f'DESCRIBE "{view.table}"').fetchall()
    assert [r[0] for r in shown] == [n for _, n in view.columns]
    assert [r[1] for r in shown] == [r[1] for r in table]  # types pass through unchanged


def test_duckdb_view_names_cannot_inject():
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("a""b" INTEGER, c VARCHAR)')
    con.execute("INSERT INTO t VALUES (1, 'x')")
    con.execute(view_ddl(HOSTILE))
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)  # not dropped
    columns = [r[0] for r in con.execute('DESCRIBE "v""; DROP TABLE t; --"').fetchall()]
    assert columns == ['x"; DROP TABLE t; --', "Café Name"]


def _flatten(part: sql.Composable) -> list[sql.Composable]:
    if isinstance(part, sql.Composed):
        return [leaf for p in part.seq for leaf in _flatten(p)]
    return [part]


@pytest.mark.parametrize("view", catalog.tlc_views(), ids=lambda v: v.name)
def test_postgres_view_names_are_all_identifiers(view: catalog.TlcView):
    parts = _flatten(ddl.view_ddl("my schema", view))
    idents = [p.strings for p in parts if isinstance(p, sql.Identifier)]
    expected = [("my schema", view.name)]
    for column, name in view.columns:
        expected += [(column,), (name,)]
    assert idents == [*expected, ("my schema", view.table)]
    # the only text that is not an identifier is the statement's own keywords
    words = " ".join(p.string for p in parts if isinstance(p, sql.SQL)).split()
    assert set(words) <= {"CREATE", "OR", "REPLACE", "VIEW", "AS", "SELECT", ",", "FROM"}
    drop = _flatten(ddl.drop_view("my schema", view))
    assert [p.strings for p in drop if isinstance(p, sql.Identifier)] == [("my schema", view.name)]
    assert "CASCADE" not in " ".join(p.string for p in drop if isinstance(p, sql.SQL))


def test_postgres_hostile_names_stay_identifiers():
    parts = _flatten(ddl.view_ddl('s"; DROP SCHEMA s; --', HOSTILE))
    idents = [p.strings for p in parts if isinstance(p, sql.Identifier)]
    assert ('s"; DROP SCHEMA s; --', HOSTILE.name) in idents
    assert ('x"; DROP TABLE t; --',) in idents
    assert not any("DROP" in p.string for p in parts if isinstance(p, sql.SQL))


def _bigquery() -> BigQueryWarehouse:
    client = bigquery.Client(project="some-project", credentials=AnonymousCredentials())
    return BigQueryWarehouse(client, "tlc")


@pytest.mark.parametrize("view", catalog.tlc_views(), ids=lambda v: v.name)
def test_bigquery_view_is_one_statement_with_backticked_names(view: catalog.TlcView):
    text = _bigquery().view_sql(view)
    assert text.startswith(f"CREATE OR REPLACE VIEW `some-project.tlc.{view.name}` AS SELECT ")
    assert text.endswith(f" FROM `some-project.tlc.{view.table}`")
    assert select_list(text, view, "`") == [f"`{c}` AS `{n}`" for c, n in view.columns]
    assert ";" not in text


def test_bigquery_refuses_hostile_names():
    wh = _bigquery()
    with pytest.raises(PipelineError, match="column name"):
        wh.view_sql(HOSTILE)
    with pytest.raises(PipelineError, match="table name"):
        wh.view_sql(catalog.TlcView("v`; DROP TABLE t; --", "t", (("a", "b"),)))
    column = catalog.TlcView("v", "t", (("a", "x`; DROP TABLE t; --"),))
    with pytest.raises(PipelineError, match="column name"):
        wh.view_sql(column)
