"""Fetch one source file over HTTP into the lake, verified, under its final name or not at all.

Why not ``urllib3.Retry``: it retries on status codes and connect errors, but a body that is
cut short or reset half-way is only seen while streaming, after Retry has handed over. So
the whole attempt (request, body, integrity check) is the unit tenacity retries.
"""

from __future__ import annotations

import datetime as dt
import errno
import http.client
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
import tenacity
import urllib3

from pipeline.domain.errors import (
    BadSourceFile,
    MonthNotPublished,
    PipelineError,
    SourceUnreachable,
    TransientSourceError,
)
from pipeline.domain.quality import SourceManifest
from pipeline.extract.verify import StreamVerifier
from pipeline.lake.lake import Lake, RawFile
from pipeline.lake.store import ObjectWriter
from pipeline.util.failpoints import failpoint

log = logging.getLogger(__name__)

# (bytes so far, total or None, bytes per second)
ProgressFn = Callable[[int, int | None, float], None]

# At most this much per read of the body: read1 returns what arrived, up to it. 256 KiB, not
# 1 MiB: read1 allocates its whole size for every call, and over TLS each call returns one
# 16 KiB record, so 1 MiB reads took 1.5x as long as 256 KiB ones (benchmarks/download.py).
READ = 256 << 10
NOT_PUBLISHED = {403, 404, 410}  # CloudFront answers 403 for a key that does not exist
RETRY_STATUS = {408, 425, 429}  # plus every 5xx
# What a body read raises when the peer resets, stalls or closes early. Not OSError as a
# whole: a full disk is not a network fault and must not be retried.
_NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0  # seconds; doubles per attempt, capped at 30 s
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # A host that cannot be reached at all (DNS, refused, no answer) is retried only this
    # long after the first try: a blip passes in seconds, an offline machine does not.
    unreachable_for: float = 10.0
    # Bytes per second, averaged over each read_timeout: a server that trickles a byte now and
    # then never trips read_timeout, and would hold the attempt for ever (curl's
    # --speed-limit/--speed-time). An attempt then lasts at most its size / min_rate.
    min_rate: float = 10_000.0


def redact_url(url: str) -> str:
    """Drop userinfo and query values: signed URLs carry credentials there."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, url: str) -> str:
    """Remove a URL's secrets from a driver's error text (requests quotes the whole URL)."""
    parts = urlsplit(url)
    for secret in (parts.query, parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text


def download(
    url: str,
    lake: Lake,
    raw_name: str,
    kind: str,
    *,
    policy: RetryPolicy = RetryPolicy(),
    progress: ProgressFn | None = None,
    session: requests.Session | None = None,
) -> RawFile:
    """Stream ``url`` into ``lake`` as ``raw_name`` (kind: "parquet", "csv.gz" or "csv"),
    verify it, publish it, and return the raw file that stands (ours, or another worker's
    that published first).

    Raises MonthNotPublished on 403/404/410, BadSourceFile when the bytes are not a usable file,
    TransientSourceError when every attempt hit a transient fault.
    """
    session = session or requests.Session()
    safe_url = redact_url(url)
    try:
        for attempt in _retrying(policy, safe_url):
            with attempt:
                number = attempt.retry_state.attempt_number
                raw = _attempt(
                    session, url, safe_url, lake, raw_name, kind, policy, progress, number
                )
    except SourceUnreachable as e:
        _remember_unreachable(safe_url, e)
        raise
    return raw


def _retrying(policy: RetryPolicy, safe_url: str) -> tenacity.Retrying:
    """Transient faults only, with exponential backoff; an unreachable host for a short while."""

    def stop(rs: tenacity.RetryCallState) -> bool:
        if rs.attempt_number >= policy.attempts:
            return True
        error = rs.outcome.exception() if rs.outcome else None
        waited = rs.seconds_since_start or 0.0
        return isinstance(error, SourceUnreachable) and (
            waited >= policy.unreachable_for or _known_unreachable(safe_url) is not None
        )

    def warn(rs: tenacity.RetryCallState) -> None:
        wait = rs.next_action.sleep if rs.next_action else 0.0
        error = rs.outcome.exception() if rs.outcome else None
        log.warning(
            "attempt %d/%d failed, retrying in %.1f s: %s",
            rs.attempt_number,
            policy.attempts,
            wait,
            error,
        )

    backoff = tenacity.wait_exponential(multiplier=policy.backoff, max=30)

    def wait(rs: tenacity.RetryCallState) -> float:
        error = rs.outcome.exception() if rs.outcome else None
        return min(policy.backoff, 1.0) if isinstance(error, SourceUnreachable) else backoff(rs)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientSourceError),
        stop=stop,
        wait=wait,
        before_sleep=warn,
        reraise=True,
    )


def _attempt(
    session: requests.Session,
    url: str,
    safe_url: str,
    lake: Lake,
    raw_name: str,
    kind: str,
    policy: RetryPolicy,
    progress: ProgressFn | None,
    number: int,
) -> RawFile:
    _raise_if_known_unreachable(safe_url)
    try:
        resp = session.get(url, stream=True, timeout=(policy.connect_timeout, policy.read_timeout))
    except (requests.ConnectionError, requests.Timeout) as e:
        raise connection_error(e, url, policy) from None
    data_name = lake.new_raw_object(raw_name)
    written = False
    try:
        with resp:
            _check_status(resp, safe_url)
            expected = _content_length(resp)
            verifier = StreamVerifier(kind, safe_url)
            try:
                with lake.writer(data_name) as out:
                    _stream_body(resp, out, verifier, url, expected, progress, policy)
                    if expected is not None and out.size != expected:
                        raise TransientSourceError(
                            f"{safe_url}: body cut short: got {out.size} of {expected} bytes "
                            "(Content-Length)"
                        )
                written = True
                sha, size = out.sha256, out.size
                if kind == "parquet" and verifier.size >= 12:
                    with lake.store.filesystem.open_input_file(lake.store.path(data_name)) as f:
                        verifier.finish(f)
                else:
                    verifier.finish()
            except BadSourceFile as e:
                if expected is None:
                    # Without Content-Length, a connection closed early looks like a complete
                    # body; a file that fails its check may just have been cut. Worth a retry.
                    raise TransientSourceError(f"{e} (sent without Content-Length)") from None
                raise
        manifest: SourceManifest = {
            "url": safe_url,
            "format": kind,
            "bytes": size,
            "sha256": sha,
            "etag": resp.headers.get("ETag"),
            "last_modified": resp.headers.get("Last-Modified"),
            "attempts": number,
            "downloaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        failpoint("download.before_publish")
        # The manifest is the marker: created last, create-only. From here the data is
        # publish_raw's to keep or delete: its marker may name it even if the call raises.
        written = False
        return lake.publish_raw(raw_name, data_name, manifest)
    except BaseException:
        if written:
            lake.store.delete([data_name])
        raise


def is_published(url: str, policy: RetryPolicy = RetryPolicy()) -> bool:
    """Whether the source answers a HEAD for ``url`` with anything but 403/404/410.

    Used to tell "not out yet" from a failure before any download starts. A server that
    answers inconclusively (a 5xx, a slow answer, one that refuses HEAD) counts as published:
    the download then decides, with its own retries. No answer at all (DNS, refused, no
    route) is not an answer: it raises SourceUnreachable, naming the host and the cause."""
    safe_url = redact_url(url)
    try:
        for attempt in _retrying(policy, safe_url):
            with attempt:
                _raise_if_known_unreachable(safe_url)
                try:
                    resp = requests.head(
                        url,
                        allow_redirects=True,
                        timeout=(policy.connect_timeout, policy.read_timeout),
                    )
                except (requests.ConnectionError, requests.Timeout) as e:
                    error = connection_error(e, url, policy)
                    if not isinstance(error, SourceUnreachable):
                        return True  # it answered, then failed: let the download decide
                    raise error from None
    except SourceUnreachable as e:
        _remember_unreachable(safe_url, e)
        raise
    return resp.status_code not in NOT_PUBLISHED


# -- no connection at all ---------------------------------------------------------------------
# host:port -> (until when, why). An offline machine would otherwise spend the whole budget
# again on every month of a backfill; within UNREACHABLE_TTL the first verdict stands.
UNREACHABLE_TTL = 60.0
_unreachable: dict[str, tuple[float, str]] = {}


def connection_error(e: Exception, url: str, policy: RetryPolicy) -> TransientSourceError:
    """SourceUnreachable when no connection was made (DNS, refused, no route, connect
    timeout), else TransientSourceError (a reset or a read timeout on a live server)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    causes = list(_causes(e))
    if isinstance(e, requests.ConnectTimeout):
        why = f"no answer within {policy.connect_timeout:g} s (connect timeout)"
    elif any(isinstance(c, socket.gaierror) for c in causes) or any(
        type(c).__name__ == "NameResolutionError" for c in causes
    ):
        gai = next((c for c in causes if isinstance(c, socket.gaierror)), None)
        why = f"DNS cannot resolve the name ({gai.strerror if gai else 'name resolution failed'})"
    elif any(isinstance(c, ConnectionRefusedError) for c in causes):
        why = "the connection was refused"
    elif any(isinstance(c, OSError) and c.errno in _NO_ROUTE for c in causes):
        why = "no route to it (network unreachable)"
    elif any(type(c).__name__ == "NewConnectionError" for c in causes):
        why = f"cannot connect ({scrub(str(causes[-1]), url)})"
    else:
        return TransientSourceError(f"{redact_url(url)}: {type(e).__name__}: {scrub(str(e), url)}")
    return SourceUnreachable(f"{host} is unreachable: {why} ({redact_url(url)})")


_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


def _causes(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        c = todo.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        yield c
        nxt = [c.__cause__, c.__context__, getattr(c, "reason", None), *c.args[:1]]
        todo += [x for x in nxt if isinstance(x, BaseException)]


def _host_key(safe_url: str) -> str:
    return urlsplit(safe_url).netloc


def _known_unreachable(safe_url: str) -> str | None:
    until, why = _unreachable.get(_host_key(safe_url), (0.0, ""))
    return why if time.monotonic() < until else None


def _raise_if_known_unreachable(safe_url: str) -> None:
    why = _known_unreachable(safe_url)
    if why:
        raise SourceUnreachable(f"{why} ({safe_url}: not tried, the host failed moments ago)")


def _remember_unreachable(safe_url: str, error: SourceUnreachable) -> None:
    why = str(error).rsplit(" (", 1)[0] if str(error).endswith(")") else str(error)
    _unreachable[_host_key(safe_url)] = (time.monotonic() + UNREACHABLE_TTL, why)


def _check_status(resp: requests.Response, safe_url: str) -> None:
    code = resp.status_code
    if code in NOT_PUBLISHED:
        raise MonthNotPublished(f"{safe_url}: HTTP {code}: this month is not published (yet)")
    if code >= 500 or code in RETRY_STATUS:
        raise TransientSourceError(f"{safe_url}: HTTP {code} {resp.reason}")
    if code >= 400:
        raise PipelineError(f"{safe_url}: HTTP {code} {resp.reason}")


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None or resp.headers.get("Content-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _stream_body(
    resp: requests.Response,
    out: ObjectWriter,
    verifier: StreamVerifier,
    url: str,
    expected: int | None,
    progress: ProgressFn | None,
    policy: RetryPolicy,
) -> None:
    size = 0
    start = last = time.monotonic()
    # The rate check counts only the time spent waiting for the source: a lake write that
    # stalls (GCS retrying a piece) must not be blamed on the source.
    waited = window_waited = 0.0
    window_size = 0
    try:
        # decode_content=False: store the bytes exactly as served, so the byte count can be
        # compared with Content-Length and the sha256 is the file's own. read1, not stream():
        # stream(n) blocks until it has n bytes, so a server that trickles would keep this
        # loop (and the rate check below) waiting for a whole chunk; read1 returns what came.
        while True:
            asked = time.monotonic()
            chunk = resp.raw.read1(READ, decode_content=False)
            now = time.monotonic()
            waited += now - asked
            if not chunk:
                break
            verifier.feed(chunk)
            out.write(chunk)
            size += len(chunk)
            failpoint("download.streaming")
            if progress and now - last >= 0.5:
                progress(size, expected, size / max(now - start, 1e-6))
                last = now
            if waited - window_waited >= policy.read_timeout:
                rate = (size - window_size) / (waited - window_waited)
                if rate < policy.min_rate:
                    raise TransientSourceError(
                        f"{redact_url(url)}: too slow: {rate:,.0f} bytes/s over the last "
                        f"{waited - window_waited:.0f} s, under [source] min_rate = "
                        f"{policy.min_rate:,.0f}, after {size} bytes"
                    )
                window_waited, window_size = waited, size
    except _NETWORK_ERRORS as e:
        raise TransientSourceError(
            f"{redact_url(url)}: connection broke after {size} bytes: "
            f"{type(e).__name__}: {scrub(str(e), url)}"
        ) from None
    if progress:
        progress(size, expected, size / max(time.monotonic() - start, 1e-6))
