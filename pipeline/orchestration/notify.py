"""Failure notifications beyond Luigi's own e-mail ([email]/[smtp] in luigi.toml).

When ``[pipeline] webhook_url`` is set, every task failure POSTs one JSON message to it. The
body is Slack-compatible: ``text`` is what a Slack incoming webhook shows. The structured
fields (task, colour, month, error) are for other receivers. It never carries a password, and
URLs in the error are stripped of credentials. A notification that cannot be sent is logged
and otherwise ignored: it must not turn one failure into two.
"""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import urlsplit

import luigi
import requests

from pipeline.orchestration import logs

log = logging.getLogger(__name__)

_URL = re.compile(r"https?://[^\s'\"<>]+")


def failure_message(task: luigi.Task, exc: BaseException) -> dict[str, object]:
    from pipeline.extract.download import redact_url

    error = _URL.sub(lambda m: redact_url(m.group(0)), f"{type(exc).__name__}: {exc}")
    params = logs.redact(task.to_str_params(only_public=True))
    month = (
        f"{int(params['year']):04d}-{int(params['month']):02d}"
        if "year" in params and "month" in params
        else None
    )
    return {
        "text": f"tlc-pipeline: {task.task_id} failed on {socket.gethostname()}: {error}",
        "task": task.task_family,
        "task_id": task.task_id,
        "params": params,
        "color": params.get("color"),
        "month": month,
        "error": error,
        "host": socket.gethostname(),
    }


def post_failure(task: luigi.Task, exc: BaseException) -> None:
    from pipeline.orchestration import config

    url = config.pipeline().webhook_url
    if not url:
        return
    try:
        resp = requests.post(url, json=failure_message(task, exc), timeout=(5, 10))
        resp.raise_for_status()
    except requests.RequestException as e:
        log.warning("failure webhook %s: %s", webhook_where(url), scrub_webhook(str(e), url))


def webhook_where(url: str) -> str:
    """The webhook's scheme, host and port only: Slack, Teams and Discord put the webhook's
    secret in the path (``/services/T…/B…/<secret>``), which is as good as a password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/…"


def scrub_webhook(text: str, url: str) -> str:
    """``text`` (requests quotes the whole URL: "404 … for url: …") without the URL's path,
    query or credentials."""
    from pipeline.extract.download import scrub

    parts = urlsplit(url)
    if len(parts.path) > 1:
        text = text.replace(parts.path, "/…")
    return scrub(text, url)


luigi.Task.event_handler(luigi.Event.FAILURE)(post_failure)
