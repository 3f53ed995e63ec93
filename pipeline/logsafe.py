"""Keep credentials out of Luigi's own log lines.

Luigi logs the whole parsed configuration once, at INFO ("Loaded {...}", from
luigi/configuration/base_parser.py). That would print ``[postgres] password``, or any other
secret someone puts in luigi.toml, to the console and the cron log. The filter below masks
such values in that record before any handler sees it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|private_key", re.IGNORECASE)
MASK = "***"


def redact(value: Any) -> Any:
    """A copy of ``value`` with every mapping value under a secret-looking key masked."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


class RedactConfig(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.args, tuple) and any(isinstance(a, dict) for a in record.args)
        ) or isinstance(record.args, dict):
            record.args = redact(record.args)
        return True


def install() -> None:
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, RedactConfig) for f in logger.filters):
        logger.addFilter(RedactConfig())
