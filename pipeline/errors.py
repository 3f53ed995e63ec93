"""Error types. Each message names the file (or URL) and the cause, once."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class for every error this package raises on purpose."""


class MonthNotPublished(PipelineError):
    """The TLC answered 404/403: the month is not out yet. Cron and backfills count these
    apart from failures."""


class TransientSourceError(PipelineError):
    """A fault worth retrying: 5xx, a reset connection, a timeout, a short body."""


class BadSourceFile(PipelineError):
    """The file arrived but is not a usable TLC file (HTML page, empty, truncated, not
    parquet/gzip, malformed rows). Retrying will not help."""


class SchemaError(BadSourceFile):
    """Columns that the catalog does not know, or a required column that is missing."""


class CastError(BadSourceFile):
    """A value that cannot be cast to its canonical type (rule 3)."""
