"""Before a run starts: is the central scheduler there, and has it given up on a task?

Two things Luigi leaves to chance:

- **luigid down.** Luigi retries each call to luigid (``[core] rpc-retry-attempts`` times,
  ``rpc-retry-wait`` apart) and then dies with a traceback. We want a run to ride out a luigid
  restart in the middle (so those retries are generous), yet fail in a second, with one line
  saying what to do, when luigid is not there at the start. So ``luigi --module pipeline ...``
  asks luigid once, with a short timeout, when the package is imported, before Luigi makes its
  first call.
- **tasks luigid has disabled.** After ``retry_count`` failures within ``disable_window`` luigid
  disables a task, and keeps it disabled for ``[scheduler] disable_persist``. A later run then
  gets no permission to run it, and Luigi counts that as "not run", which must exit 0 when
  several workers share a backfill (``[retcode] not_run``). That would make a month that
  failed look done. The same request that checks luigid returns its disabled tasks, and a task
  of ours that is incomplete and disabled raises ``TaskDisabled`` from ``complete()``: the run
  exits ``scheduling_error`` naming the task and how to re-enable it.

Only the ``luigi`` command is checked here (the process's own arguments say which scheduler it
will use). ``tlc-cron`` checks luigid itself and calls :func:`remember` with the answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

from pipeline.domain.errors import PipelineError

PROBE_TIMEOUT = 3.0

# task_id -> luigid's description, for the remote scheduler this process runs against;
# None when it runs with a local scheduler (or outside the `luigi` command).
_disabled: dict[str, object] | None = None
_scheduler_url = ""


class SchedulerUnreachable(PipelineError):
    pass


class TaskDisabled(PipelineError):
    pass


def scheduler_url(argv: list[str]) -> str | None:
    """The luigid URL a ``luigi`` command line will use, or None for ``--local-scheduler``."""
    import luigi.configuration

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--local-scheduler", action="store_true")
    p.add_argument("--scheduler-url", default=None)
    p.add_argument("--scheduler-host", default=None)
    p.add_argument("--scheduler-port", default=None)
    args, _ = p.parse_known_args(argv)
    cfg = luigi.configuration.get_config()
    if args.local_scheduler or _truthy(cfg.get("core", "local_scheduler", False)):
        return None
    url = args.scheduler_url or cfg.get("core", "scheduler_url", "")
    if url:
        return str(url).rstrip("/")
    host = args.scheduler_host or cfg.get("core", "scheduler_host", "localhost")
    port = args.scheduler_port or cfg.get("core", "scheduler_port", 8082)
    return f"http://{host}:{int(port)}"


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def api(
    url: str, method: str, data: dict[str, str | int], timeout: float = PROBE_TIMEOUT
) -> dict[str, object]:
    """One call to luigid's JSON API (the same one the visualizer and workers use). A
    ``user:password@`` in the URL (a luigid behind a proxy with basic auth, which Luigi's own
    client supports) becomes an Authorization header: urllib would take it for the host."""
    parts = urllib.parse.urlsplit(url)
    headers = {}
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        secret = urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        netloc = parts.netloc.rpartition("@")[2]  # host[:port] as written ([::1] keeps its [])
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    request = urllib.request.Request(f"{url}/api/{method}?{query}", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        answer = json.loads(resp.read())["response"]
    return answer if isinstance(answer, dict) else {}


def probeable(url: str) -> bool:
    """Whether the start check can ask this luigid: not an http+unix:// one (Luigi reaches
    it through requests-unixsocket; urllib cannot)."""
    return urllib.parse.urlsplit(url).scheme in ("http", "https")


def shown(url: str) -> str:
    """``url`` for a message: its password masked (as in every log line)."""
    from pipeline.orchestration.logs import redact

    return redact(url)


def probe(url: str) -> dict[str, object]:
    """luigid's disabled tasks (id -> its description); raise SchedulerUnreachable if luigid
    does not answer."""
    try:
        listed = api(url, "task_list", {"status": "DISABLED", "upstream_status": "", "search": ""})
    except (OSError, ValueError, KeyError) as e:
        reason = getattr(e, "reason", None) or e
        raise SchedulerUnreachable(f"luigid at {shown(url)} is unreachable ({reason})") from None
    return {k: v for k, v in listed.items() if isinstance(v, dict)}


def start_hint(url: str) -> str:
    port = urllib.parse.urlsplit(url).port or 8082
    return (
        f"start it with `tlc-luigid --port {port} --state-path data/luigid/state.pickle "
        "--logdir data/luigid`, or run without it by adding --local-scheduler"
    )


def remember(url: str | None, disabled: dict[str, object] | None) -> None:
    global _disabled, _scheduler_url
    _scheduler_url, _disabled = url or "", disabled


def check_scheduler(argv: list[str] | None = None) -> None:
    """Under ``luigi --module pipeline``: exit at once, with one line, if luigid is down."""
    argv = sys.argv if argv is None else argv
    if not _is_luigi_command(argv) or {"--help", "--help-all", "-h"} & set(argv):
        return
    url = scheduler_url(argv[1:])
    if url is None or not probeable(url):
        return
    try:
        remember(url, probe(url))
    except SchedulerUnreachable as e:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        sys.stderr.write(f"{stamp} ERROR   pipeline: {e}: {start_hint(url)}\n")
        raise SystemExit(_retcode("unhandled_exception", 40)) from None


def _is_luigi_command(argv: list[str]) -> bool:
    return bool(argv) and os.path.basename(argv[0]) == "luigi"


def _retcode(name: str, default: int) -> int:
    import luigi.configuration

    return int(luigi.configuration.get_config().get("retcode", name, default))


def raise_if_disabled(task_id: str, what: str) -> None:
    """Raise TaskDisabled if luigid (as probed at the start of this run) disabled the task."""
    if not _disabled or task_id not in _disabled:
        return
    try:
        error = str(api(_scheduler_url, "fetch_error", {"task_id": task_id}).get("error") or "")
    except (OSError, ValueError, KeyError):
        error = ""
    last = next((line for line in reversed(error.strip().splitlines()) if line.strip()), "")
    raise TaskDisabled(
        f"{what} is disabled in luigid after repeated failures"
        + (f" (last error: {last.strip()})" if last else "")
        + f". Re-enable it in the visualizer at {shown(_scheduler_url)} or with `tlc-forget`, "
        "then run again"
    )
