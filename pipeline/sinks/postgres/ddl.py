"""Table definitions: canonical types, the partitioned parents, the one index, the ledger, and
the views with the TLC's names."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from psycopg2 import sql

from pipeline.domain import catalog

PG_TYPES = {
    pa.timestamp("us"): "timestamp",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.string(): "text",
}

# BRIN on the pickup time: trips arrive roughly in time order, so a few kB index the month and
# it builds in a quarter of a B-tree's time. That is the one index: month queries scan their
# partition anyway, and a B-tree on the zone ids cost 0.7 s per 1.3M rows for joins that
# hash-join faster without it. A stage's index matches its parent's, so ATTACH adopts it
# instead of building one under the lock (test_attach_adopts_the_index_the_stage_built).
INDEXES = ((catalog.PICKUP_COLUMN, "brin"),)


def columns(
    fields: Sequence[tuple[str, pa.DataType]], not_null: tuple[str, ...] = ()
) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(name),
            sql.SQL(PG_TYPES[type_]),
            sql.SQL(" NOT NULL" if name in not_null else ""),
        )
        for name, type_ in fields
    )


def fields_of(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in schema]


def view_ddl(schema: str, view: catalog.TlcView) -> sql.Composed:
    """The view with the TLC's names. Every name is a quoted identifier, so the view's columns
    keep the TLC's case: the course's ``t."PULocationID"`` finds them, and its unquoted
    lowercase names (``trip_distance``, ``tip_amount``) find theirs too."""
    return sql.SQL("CREATE OR REPLACE VIEW {} AS SELECT {} FROM {}").format(
        sql.Identifier(schema, view.name),
        sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(column), sql.Identifier(name))
            for column, name in view.columns
        ),
        sql.Identifier(schema, view.table),
    )


def drop_view(schema: str, view: catalog.TlcView) -> sql.Composed:
    """Only a view, and never CASCADE: a table of that name, or a view of the user's built on
    this one, stays."""
    return sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(schema, view.name))


def index_name(table: str, column: str) -> str:
    return f"{table}_{column}_idx"[:63]
