"""A reverse proxy on 127.0.0.1 that forwards to an emulator (fake-gcs-server, local-bigquery)
and injects the transient faults Google's front ends produce, which no emulator can be told to
produce.

A test queues faults; each matching request consumes one. A fault either answers an HTTP error
in Google's JSON format

- ``when="before"``: instead of forwarding (the request never reached the emulator), or
- ``when="after"``: after forwarding (the emulator did the work, the client sees an error:
  the case where a blind retry would do the work twice),

or, with ``status=0``, closes the connection without any answer (``when="before"``: a
dropped connection, which the clients retry like a 503 and, when their retries are spent,
raise as requests' ConnectionError, not as an HTTP error),

or, for BigQuery jobs (``job_error=True``), makes a job end ``DONE`` with an ``errorResult``,
as BigQuery reports a job that failed transiently (``backendError``, ``rateLimitExceeded``) or
for good (``invalid``, ``accessDenied``):

- ``when="before"``: the job never reaches the emulator. The proxy answers jobs.insert with
  the failed job, and from then on owns that job id: jobs.get returns the failed job,
  jobs.getQueryResults the job's error, and a jobs.insert reusing the id 409 Conflict, as
  BigQuery does (a job id is taken for good, even by a failed job).
- ``when="after"``: the emulator runs the job, and the proxy rewrites its status in the
  jobs.insert response and in every later jobs.get for that id (the job did its work but
  reports failure: the harshest case for "never loaded twice").

Every request is recorded (method, path, query, status returned, fault, job id), so tests
can count attempts. Request bodies are read whole (Content-Length or chunked) and forwarded
with a Content-Length; response bodies are streamed, keeping a Content-Length or re-chunking.
``Location`` headers and JSON bodies that name the emulator's URL (resumable upload sessions,
selfLink/mediaLink) are rewritten to the proxy's URL, so the client keeps talking through the
proxy.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The REST paths of BigQuery's job methods (the upload form of jobs.insert too).
JOBS_INSERT = re.compile(r"^/(?:upload/)?bigquery/v2/projects/(?P<project>[^/]+)/jobs$")
JOBS_GET = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/jobs/(?P<job>[^/?]+)$")
QUERY_RESULTS = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/queries/(?P<job>[^/?]+)$")
_JOB_ID_IN_BODY = re.compile(rb'"jobId"\s*:\s*"([^"]+)"')

_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
}
# The HTTP status BigQuery gives a job error reason (jobs.getQueryResults of a failed job).
_REASON_STATUS = {
    "backendError": 500,
    "internalError": 500,
    "rateLimitExceeded": 403,
    "quotaExceeded": 403,
    "accessDenied": 403,
    "invalid": 400,
    "invalidQuery": 400,
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass
class Fault:
    """Answer ``status`` with ``reason`` (or fail the job, ``job_error``) ``times`` times, for
    requests whose method is ``method`` ("*": any) and whose path (and query string, body,
    BigQuery job id) the regexes ``path`` (``query``, ``body``, ``job``) search-match."""

    method: str
    path: str
    status: int = 503
    reason: str = "backendError"
    when: str = "before"
    times: int = 1
    query: str | None = None
    body: str | None = None
    job: str | None = None
    job_error: bool = False
    message: str = ""
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', not {self.when!r}")
        if self.status == 0 and (self.when != "before" or self.job_error):
            raise ValueError("status 0 (no answer) is a fault before forwarding, not a job's")
        self.message = self.message or f"injected by the fault proxy: {self.reason}"

    @property
    def left(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, path: str, query: str, body: bytes, job_id: str | None) -> bool:
        return (
            self.left > 0
            and self.method in ("*", method)
            and re.search(self.path, path) is not None
            and (self.query is None or re.search(self.query, query) is not None)
            and (self.body is None or re.search(self.body.encode(), body) is not None)
            and (self.job is None or (job_id is not None and re.search(self.job, job_id)))
        )

    def __str__(self) -> str:
        kind = f"job {self.reason}" if self.job_error else f"{self.status} {self.reason}"
        return f"{kind} {self.when} {self.method} {self.path}"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    status: int  # what the client got
    fault: str | None = None  # the fault that answered, if any
    job_id: str | None = None  # for jobs.insert/get/getQueryResults


def error_body(status: int, reason: str, message: str) -> bytes:
    """Google's JSON error format (what google.api_core turns into an exception)."""
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": _STATUS.get(status, "UNKNOWN"),
            }
        }
    ).encode()


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` forwards ``proxy.url`` to ``upstream``."""

    def __init__(self, upstream: str):
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = f"http://{parsed.hostname}:{parsed.port}"
        self._up_host, self._up_port = parsed.hostname, parsed.port
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        # job id -> (reason, message, the job resource the proxy answers, or None when the
        # emulator has the job and only its status is rewritten)
        self._failed_jobs: dict[str, tuple[str, str, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- life -------------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- faults -----------------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int = 503, **kw: Any) -> Fault:
        """Queue an HTTP error; ``reason`` defaults to what Google sends with ``status``."""
        default = {429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
        kw.setdefault("reason", default.get(status, "forbidden" if status == 403 else "error"))
        fault = Fault(method, path, status, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_job(self, reason: str, job: str = "", when: str = "before", **kw: Any) -> Fault:
        """Make the next ``times`` jobs.insert whose job id matches ``job`` end DONE with an
        errorResult of ``reason``."""
        fault = Fault("POST", JOBS_INSERT.pattern, reason=reason, when=when, job=job,
                      job_error=True, **kw)  # fmt: skip
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget the faults not used yet and the request log (failed jobs stay failed)."""
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def unused(self) -> list[str]:
        """Faults that did not fire as often as asked: a test that expected them to is wrong."""
        with self._lock:
            return [f"{f} ({f.left} of {f.times} left)" for f in self.faults if f.left > 0]

    def requests(self, method: str = "*", path: str = "", query: str = "") -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.log
                if method in ("*", r.method)
                and re.search(path, r.path)
                and re.search(query, r.query)
            ]

    def job_inserts(self, taken: bool = True) -> list[str]:
        """Job ids of the jobs.insert requests, in order (client retries included); without
        those answered 409 (id taken) if not ``taken``."""
        return [
            r.job_id or "?"
            for r in self.requests("POST", JOBS_INSERT.pattern)
            if taken or r.status != 409
        ]

    # -- the proxy --------------------------------------------------------------------------
    def _take(
        self, method: str, path: str, query: str, body: bytes, job_id: str | None
    ) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(method, path, query, body, job_id):
                    f.hits += 1
                    return f
        return None

    def _record(self, h: BaseHTTPRequestHandler, status: int, fault: object, job_id: Any) -> None:
        path, _, query = h.path.partition("?")
        with self._lock:
            self.log.append(
                Request(h.command, path, query, status, str(fault) if fault else None, job_id)
            )

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = _read_body(h)
        path, _, query = h.path.partition("?")
        job_id = _job_id(path, body)
        try:
            with self._lock:
                failed = self._failed_jobs.get(job_id) if job_id else None
            if failed and failed[2] is not None:  # the proxy owns this failed job
                status = self._answer_owned_job(h, path, job_id, failed)
                self._record(h, status, "failed job", job_id)
                return
            fault = self._take(h.command, path, query, body, job_id)
            if fault and fault.job_error and fault.when == "before" and self._has_job(path, job_id):
                with self._lock:  # the id is taken: BigQuery answers 409, whatever else
                    fault.hits -= 1
                fault = None
            if fault and fault.when == "before":
                if fault.job_error:
                    resource = _failed_job(body, job_id, fault.reason, fault.message)
                    with self._lock:
                        self._failed_jobs[job_id] = (fault.reason, fault.message, resource)
                    _send_json(h, 200, resource)
                    self._record(h, 200, fault, job_id)
                elif fault.status == 0:  # no answer: the handler closes the connection
                    h.close_connection = True
                    self._record(h, 0, fault, job_id)
                else:
                    _send(h, fault.status, error_body(fault.status, fault.reason, fault.message))
                    self._record(h, fault.status, fault, job_id)
                return
            status = self._forward(h, body, fault, job_id, failed)
            self._record(h, status, fault, job_id)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _has_job(self, path: str, job_id: str | None) -> bool:
        """Whether the emulator already has a job with this id (an earlier run's)."""
        m = JOBS_INSERT.match(path)
        if not m or not job_id:
            return False
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=60)
        try:
            conn.request("GET", f"/bigquery/v2/projects/{m['project']}/jobs/{job_id}")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        finally:
            conn.close()

    def _answer_owned_job(
        self, h: BaseHTTPRequestHandler, path: str, job_id: str, failed: tuple
    ) -> int:
        reason, message, resource = failed
        if JOBS_INSERT.match(path):
            msg = f"Already Exists: Job {resource['id']}"
            _send(h, 409, error_body(409, "duplicate", msg))
            return 409
        if JOBS_GET.match(path):
            _send_json(h, 200, resource)
            return 200
        status = _REASON_STATUS.get(reason, 500)
        _send(h, status, error_body(status, reason, message))
        return status

    def _forward(
        self,
        h: BaseHTTPRequestHandler,
        body: bytes,
        fault: Fault | None,
        job_id: str | None,
        failed: tuple | None,
    ) -> int:
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = f"{self._up_host}:{self._up_port}"
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=300)
        try:
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            if fault and not fault.job_error:  # "after": the emulator did it; say it failed
                resp.read()
                _send(h, fault.status, error_body(fault.status, fault.reason, fault.message))
                return fault.status
            path = h.path.partition("?")[0]
            out = [
                (k, v.replace(self.upstream, self.url) if k.lower() == "location" else v)
                for k, v in resp.getheaders()
                if k.lower() not in _HOP_BY_HOP
            ]
            ctype = resp.getheader("Content-Type", "")
            media = "alt=media" in h.path or path.startswith("/download/")
            if fault or failed or ("json" in ctype and not media):
                data = resp.read().replace(self.upstream.encode(), self.url.encode())
                status = resp.status
                if fault and 200 <= status < 300:  # a job error "after": the emulator ran it
                    with self._lock:
                        self._failed_jobs[job_id] = (fault.reason, fault.message, None)
                    failed = self._failed_jobs[job_id]
                if failed and 200 <= status < 300:
                    reason, message, _ = failed
                    if QUERY_RESULTS.match(path):
                        status = _REASON_STATUS.get(reason, 500)
                        data = error_body(status, reason, message)
                        out = [(k, v) for k, v in out if k.lower() == "content-type"]
                    else:  # jobs.insert or jobs.get: the job resource
                        data = json.dumps(_with_error(json.loads(data), reason, message)).encode()
                _send(h, status, data, out, head=h.command == "HEAD")
                return status
            _relay(h, resp, out)
            return resp.status
        finally:
            conn.close()


# -- helpers --------------------------------------------------------------------------------
def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
    n = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(n) if n else b""


def _job_id(path: str, body: bytes) -> str | None:
    if JOBS_INSERT.match(path):
        m = _JOB_ID_IN_BODY.search(body)
        return m.group(1).decode() if m else None
    m = JOBS_GET.match(path) or QUERY_RESULTS.match(path)
    return urllib.parse.unquote(m.group("job")) if m else None


def _with_error(resource: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    err = {"reason": reason, "message": message, "location": ""}
    resource["status"] = {"state": "DONE", "errorResult": err, "errors": [err]}
    return resource


def _failed_job(body: bytes, job_id: str | None, reason: str, message: str) -> dict[str, Any]:
    """The job resource BigQuery answers for a job that failed at once: the request's own
    configuration and reference, DONE, with the error."""
    m = re.search(rb"\{.*\}", body, re.S)  # the JSON part of a plain or multipart insert
    request = json.loads(m.group(0)) if m else {}
    ref = dict(request.get("jobReference") or {})
    ref.setdefault("jobId", job_id)
    now = str(int(time.time() * 1000))
    resource = {
        "kind": "bigquery#job",
        "id": f"{ref.get('projectId')}:{ref.get('location') or 'US'}.{ref['jobId']}",
        "jobReference": ref,
        "configuration": request.get("configuration", {}),
        "statistics": {"creationTime": now, "startTime": now, "endTime": now},
    }
    return _with_error(resource, reason, message)


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    headers: list[tuple[str, str]] | None = None,
    head: bool = False,
) -> None:
    h.send_response(status)
    headers = headers or [("Content-Type", "application/json; charset=UTF-8")]
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if not head:
        h.wfile.write(data)


def _send_json(h: BaseHTTPRequestHandler, status: int, value: Any) -> None:
    _send(h, status, json.dumps(value).encode())


def _relay(
    h: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, headers: list[tuple[str, str]]
) -> None:
    """Stream the upstream body: with its Content-Length if it had one, else re-chunked."""
    h.send_response(resp.status)
    for k, v in headers:
        h.send_header(k, v)
    length = resp.getheader("Content-Length")
    no_body = h.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
    if no_body:
        h.send_header("Content-Length", length or "0")
        h.end_headers()
        resp.read()
        return
    if length is not None:
        h.send_header("Content-Length", length)
        h.end_headers()
        while chunk := resp.read(64 * 1024):
            h.wfile.write(chunk)
        return
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    while chunk := resp.read1(64 * 1024):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    h.wfile.write(b"0\r\n\r\n")
