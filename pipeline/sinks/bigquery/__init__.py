"""BigQuery: ``{dataset}.{color}_trips``, loaded from the month's objects on GCS.

``jobs`` (deterministic job ids, resumed or retried), ``warehouse`` (the stage, the swap
transaction, the ledger, the zones, the client).
"""

from pipeline.sinks.bigquery.warehouse import BigQueryWarehouse, bigquery_client

__all__ = ["BigQueryWarehouse", "bigquery_client"]
