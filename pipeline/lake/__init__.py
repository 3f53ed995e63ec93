"""The data lake: where each stage's files live, and how they are published.

``lake`` is the layout and the publication protocol (markers written last, create-only),
written once over a ``store``: ``local`` (a folder) or ``gcs`` (a bucket, ``gs://``).
``gcs_copy`` is UploadGCS's copy of a local lake's clean months, for BigQuery. None of them
calls a warehouse.
"""
