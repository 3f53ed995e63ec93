"""tlc-pipeline: NYC TLC trip records into a lake and a warehouse, as a Luigi graph.

``luigi --module pipeline LoadDuckDB --color green --year 2021 --month 1``
"""

import os

# Luigi only reads luigi.toml when LUIGI_CONFIG_PARSER=toml, and silently ignores it otherwise
# (luigi#2907). luigi 3.8 asks for the parser each time the config is first read, and
# `luigi --module pipeline` imports this package before it reads any config, so choosing TOML
# here makes the repository's luigi.toml (and a LUIGI_CONFIG_PATH=*.toml) take effect.
# An explicit LUIGI_CONFIG_PARSER still wins.
os.environ.setdefault("LUIGI_CONFIG_PARSER", "toml")
# Arrow reads this when its default pool is first used. jemalloc returns freed memory to the
# OS sooner than mimalloc (Arrow's usual default): a clean's peak RSS is ~25 % lower with
# jemalloc (pipeline/clean.py, benchmarks/README.md). A user's own choice wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

__version__ = "0.1.0"

from pipeline import logsafe

logsafe.install()  # before Luigi reads (and logs) the configuration

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
