"""PostgreSQL: ``{schema}.{color}_trips``, one partition per month, swapped in atomically.

``connection`` (where to connect, without leaking the password), ``ddl`` (types, tables, the
one index), ``copy`` (parallel binary COPY into a stage), ``warehouse`` (the swap, the ledger,
the zones).
"""

from pipeline.sinks.postgres.connection import PgConn
from pipeline.sinks.postgres.warehouse import PostgresWarehouse

__all__ = ["PgConn", "PostgresWarehouse"]
