"""Error types. Each message names the file (or URL) and the cause, once."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class for every error this package raises on purpose."""


class MonthNotPublished(PipelineError):
    """The TLC answered 404/403: the month is not out yet. Cron and backfills count these
    apart from failures."""


class BadParameter(PipelineError, ValueError):
    """A colour or month that cannot exist (month 13, FHVHV before 2019-02, an unknown colour)."""


class TransientSourceError(PipelineError):
    """A fault worth retrying: 5xx, a reset connection, a timeout, a short body."""


class SourceUnreachable(TransientSourceError):
    """No connection to the source at all: DNS cannot resolve it, it refuses, or it does not
    answer. Retried briefly (a blip), then reported naming the host and the cause."""


class BadSourceFile(PipelineError):
    """The file arrived but is not a usable TLC file (HTML page, empty, truncated, not
    parquet/gzip, malformed rows). Retrying will not help."""


class LakeWriteError(PipelineError):
    """The lake could not be written (disk full, read-only, no permission). Not retried: the
    message names the file and the cause, and nothing was published."""


class LakeDataMissing(PipelineError):
    """A month's marker names data the lake no longer holds (removed by hand or by a bucket's
    lifecycle rule: the pipeline's own writers never leave a marker without its data). Not
    retried: the message names both objects and the ``tlc-forget`` that rebuilds the stage."""


class SchemaError(BadSourceFile):
    """Columns that the catalog does not know, or a required column that is missing."""


class CastError(BadSourceFile):
    """A value that cannot be cast to its canonical type (rule 3)."""
