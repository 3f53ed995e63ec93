"""Keep credentials out of Luigi's own log lines.

Luigi logs the whole parsed configuration once, at INFO ("Loaded {...}", from
luigi/configuration/base_parser.py). That would print ``[postgres] password``, or any other
secret someone puts in luigi.toml, to the console and the cron log. The filter below masks
such values in that record before any handler sees it.
"""

from __future__ import annotations

import logging
import re
from typing import TypeVar, cast

T = TypeVar("T")

# Whole words of a key (password, db_pass, api_token...), not "passenger_count".
SECRET_KEY = re.compile(
    r"(^|[_\W])(pass(word|wd)?|secret|token|credentials?|private_key)($|[_\W])", re.IGNORECASE
)
MASK = "***"


# The password of a URL's user:password@ (a luigid behind basic auth: Luigi logs its URL
# with every failed call to it).
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^/\s@'\"]+@", re.IGNORECASE)


def redact(value: T) -> T:
    """A copy of ``value`` with every mapping value under a secret-looking key masked, and
    the password in every URL."""
    if isinstance(value, str):
        return cast(T, URL_PASSWORD.sub(rf"\1{MASK}@", value))
    if isinstance(value, dict):
        masked = {
            k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v else redact(v))
            for k, v in value.items()
        }
        return cast(T, masked)
    if isinstance(value, list | tuple):
        return cast(T, type(value)(redact(v) for v in value))
    return value


class RedactConfig(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple | dict):
            record.args = redact(record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, RedactConfig) for f in logger.filters):
        logger.addFilter(RedactConfig())


# -- one line per expected error ------------------------------------------------------------
_TRACEBACK = "\nTraceback (most recent call last):"
_NOISE = ("Informed scheduler that task", "logging configured via")


class OneLineErrors(logging.Filter):
    """Show an expected error as one line, without its traceback.

    Expected errors are this package's own (``pipeline.errors.PipelineError``: a bad file, an
    unreachable host, a bad parameter), a bad parameter value Luigi rejects while parsing, and
    luigid going away (``luigi.rpc.RPCError``). They say what is wrong and where; a traceback
    would only bury that. Anything else (a bug) keeps its traceback. Luigi hands these errors
    over in three shapes: as ``exc_info``, or as a formatted traceback inside the message (its
    "Will not run ... due to error in complete()" lines). Routine per-task status lines
    ("Informed scheduler that task ... has status PENDING") are left to DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO and record.getMessage().startswith(_NOISE):
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        if record.exc_info and record.exc_info[1] is not None:
            exc, head = record.exc_info[1], _head(record.getMessage())
            line = one_line(exc)
            if line is None and head.startswith("Failed connecting to remote scheduler"):
                line = f"{type(exc).__name__}: {str(exc)[:300]}"  # Luigi retries it
            if line is not None:
                if head == "Uncaught exception in luigi":
                    head = "luigi could not run"
                self._replace(record, f"{head}: {line}")
        elif record.levelno >= logging.WARNING and isinstance(record.msg, str):
            message = record.getMessage()
            if _TRACEBACK in message:
                # The exception's own line(s) end the traceback, starting in column 0 with its
                # qualified name; ours start with "pipeline.".
                lines = message.rstrip().split("\n")
                start = max(i for i, line in enumerate(lines) if not line[:1].isspace())
                tail = " ".join(" ".join(lines[start:]).split())
                if tail.startswith("pipeline."):
                    name, _, text = tail.partition(": ")
                    self._replace(record, f"{_head(message)}: {name.rsplit('.', 1)[-1]}: {text}")
        return True

    @staticmethod
    def _replace(record: logging.LogRecord, message: str) -> None:
        # The new text quotes an exception's, which RedactConfig (on the record's args and
        # message) never saw: an RPCError names luigid's URL, user:password included.
        record.msg, record.args = redact(message), None
        record.exc_info, record.exc_text = None, None


def one_line(exc: BaseException) -> str | None:
    """``Type: message`` for an expected error, None for one that deserves its traceback."""
    from pipeline.domain.errors import PipelineError

    if isinstance(exc, PipelineError):
        return f"{type(exc).__name__}: {exc}"
    if _is_parameter_error(exc):
        return f"bad parameter: {exc}"
    if type(exc).__name__ == "RPCError" and type(exc).__module__ == "luigi.rpc":
        return (
            f"{exc}: luigid stopped answering. Start it again (tlc-luigid) and rerun; "
            "what finished is kept"
        )
    return None


def _is_parameter_error(exc: BaseException) -> bool:
    import traceback

    if type(exc).__name__ in ("ParameterException", "MissingParameterException"):
        return True
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    return (
        isinstance(exc, ValueError)
        and bool(frames)
        and (frames[-1].filename.replace("\\", "/").endswith("luigi/parameter.py"))
    )


def _head(message: str) -> str:
    return message.split("\n", 1)[0].rstrip(":")
