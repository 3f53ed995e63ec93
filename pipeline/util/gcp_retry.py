"""The Google clients' own retries of transient HTTP errors, bounded and logged.

google-cloud-storage retries 408, 429, 5xx and dropped connections by itself for up to 2
minutes, google-cloud-bigquery the reasons backendError, rateLimitExceeded, internalError and
badGateway for up to 10, both silently. ``logged()`` keeps a client's own predicate, backoff
and deadline, stops after ``ATTEMPTS`` failed requests of one call, and logs each retry as
one WARNING line, so an outage shows in the log while it happens.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions

from pipeline.domain.errors import PipelineError

ATTEMPTS = 6

# What a client call raises when its retries are spent and no HTTP answer came: the connection
# kept dropping or timing out (requests' errors, re-raised by ``logged``), the client's retry
# deadline passed (RetryError), or the credentials could not be fetched. Callers catch these
# with GoogleAPICallError (an answer) so that either is one line naming the call, never a
# traceback, and never mistaken for a fault of something else (the TLC source a download
# reads, say). The request may or may not have reached the service.
NO_ANSWER: tuple[type[Exception], ...] = (
    gexc.RetryError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
    ConnectionError,
    TimeoutError,
)
# Any failed call: an error answer, no answer, another of requests' errors (a bad URL in an
# emulator setting, a body that is not JSON), or credentials that cannot be had (expired or
# revoked: RefreshError; none found: DefaultCredentialsError): one line too, but never
# retried as "no answer".
FAILED: tuple[type[Exception], ...] = (
    gexc.GoogleAPICallError,
    *NO_ANSWER,
    requests.RequestException,
    auth_exceptions.GoogleAuthError,
)


@contextlib.contextmanager
def one_line(what: str) -> Iterator[None]:
    """A call that failed (``FAILED``) after the client's retries: one PipelineError,
    ``"{what} failed: {why}"``. Errors the caller answers itself (NotFound, say) are handled
    inside the block: any of these errors that leaves it, a re-raised one too, becomes the
    PipelineError (so a caller that must see NotFound itself, as ``GcsStore._call``'s do,
    cannot use this)."""
    try:
        yield
    except FAILED as e:
        raise PipelineError(f"{what} failed: {why(e)}") from None


def logged(base: Retry, what: str, logger: logging.Logger, attempts: int = ATTEMPTS) -> Retry:
    """``base`` (a client's DEFAULT_RETRY) with one WARNING line per retry of ``what``."""
    failed = 0

    def on_error(exc: Exception) -> None:
        nonlocal failed
        failed += 1
        if failed >= attempts:
            raise exc  # the last attempt: the caller gets the error itself
        logger.warning("%s: attempt %d/%d failed, retrying: %s", what, failed, attempts, why(exc))

    # Retry has no public way to add on_error to a copy, nor to read the predicate: the
    # clients' retry objects are rebuilt from their own settings.
    return Retry(
        predicate=base._predicate,
        initial=base._initial,
        maximum=base._maximum,
        multiplier=base._multiplier,
        timeout=base._timeout,
        on_error=on_error,
    )


def why(exc: BaseException) -> str:
    """One line: the HTTP status and the service's own message (not the raw JSON body, nor
    the client's repr of the response)."""
    response = getattr(exc, "response", None)  # a requests.Response, when there is one
    status = getattr(exc, "code", None) or getattr(response, "status_code", None)
    try:
        message = getattr(response, "json")()["error"]["message"]  # noqa: B009
    except (AttributeError, KeyError, TypeError, ValueError):
        message = getattr(exc, "message", None) or str(exc)
    text = f"{status} {message}" if status else f"{type(exc).__name__}: {message}"
    return " ".join(text.split())[:500]
