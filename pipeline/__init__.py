"""tlc-pipeline: NYC TLC trip records into a lake and a warehouse, as a Luigi graph.

``luigi --module pipeline LoadDuckDB --color green --year 2021 --month 1``

The package's layers, from the data up (docs/architecture.md has the tour):
``domain`` (months, catalog, quality report, errors) < ``extract`` (download, source readers)
< ``transform`` (pure Arrow rules; clean_month) < ``lake`` (local folder, GCS copy) and
``sinks`` (DuckDB, PostgreSQL, BigQuery) < ``orchestration`` (Luigi) < ``cli``.
"""

import os

# Arrow reads this when its default pool is first used. jemalloc returns freed memory to the
# OS sooner than mimalloc (Arrow's usual default): a clean's peak RSS is ~25 % lower with
# jemalloc (pipeline/transform/clean.py, benchmarks/README.md). A user's own choice wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

from pipeline.domain.version import VERSION as __version__  # noqa: N811
from pipeline.orchestration import bootstrap, logs

logs.install()  # before Luigi reads (and logs) the configuration
bootstrap.install()  # TOML, and the package's defaults under ./luigi.toml

from pipeline.orchestration import notify, preflight  # noqa: E402,F401  (notify: the webhook)

preflight.check_scheduler()  # `luigi --module pipeline ...` against a luigid that is down

from pipeline.orchestration.tasks import (  # noqa: E402
    Backfill,
    CleanParquet,
    DownloadMonth,
    DownloadZones,
    IngestMonth,
    LoadBigQuery,
    LoadDuckDB,
    LoadPostgres,
    LoadZones,
    MonthPublished,
    Report,
    UploadGCS,
)

__all__ = [
    "Backfill",
    "CleanParquet",
    "DownloadMonth",
    "DownloadZones",
    "IngestMonth",
    "LoadBigQuery",
    "LoadDuckDB",
    "LoadPostgres",
    "LoadZones",
    "MonthPublished",
    "Report",
    "UploadGCS",
    "__version__",
]
