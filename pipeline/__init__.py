"""tlc-pipeline: NYC TLC trip records into a lake and a warehouse, as a Luigi graph.

``luigi --module pipeline LoadDuckDB --color green --year 2021 --month 1``
"""

import os

# Arrow reads this when its default pool is first used. jemalloc returns freed memory to the
# OS sooner than mimalloc (Arrow's usual default): a clean's peak RSS is ~25 % lower with
# jemalloc (pipeline/clean.py, benchmarks/README.md). A user's own choice wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

__version__ = "0.1.0"

from pipeline import bootstrap, logsafe

logsafe.install()  # before Luigi reads (and logs) the configuration
bootstrap.install()  # TOML, and the package's defaults under ./luigi.toml (pipeline/bootstrap.py)

from pipeline import preflight  # noqa: E402

preflight.check_scheduler()  # `luigi --module pipeline ...` against a luigid that is down

from pipeline import notify  # noqa: E402,F401  (registers the failure webhook)
from pipeline.tasks import (  # noqa: E402
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
    "UploadGCS",
]
