"""One line for a Google call that failed after its retries (pipeline/util/gcp_retry.py)."""

from __future__ import annotations

import logging

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_transient_error

from pipeline.domain.errors import PipelineError
from pipeline.util.gcp_retry import logged, one_line


def test_an_error_answer_is_one_line_naming_the_call():
    with pytest.raises(PipelineError) as e, one_line("GCS read of gs://b/x"):
        raise gexc.Forbidden("caller does not have storage.objects.get access")
    assert str(e.value) == (
        "GCS read of gs://b/x failed: 403 caller does not have storage.objects.get access"
    )
    assert e.value.__cause__ is None
    assert e.value.__suppress_context__  # no "during handling" chain in the log


def test_no_answer_is_one_line_too():
    expected = r"^BigQuery d: dropping t failed: ConnectionError: Connection aborted\.$"
    with pytest.raises(PipelineError, match=expected), one_line("BigQuery d: dropping t"):
        raise requests.ConnectionError("Connection aborted.")


def test_credentials_that_cannot_be_refreshed_are_one_line():
    from google.auth import exceptions as auth_exceptions

    expected = r"^GCS check of gs://b/x failed: RefreshError: invalid_grant: Token has"
    with pytest.raises(PipelineError, match=expected), one_line("GCS check of gs://b/x"):
        raise auth_exceptions.RefreshError("invalid_grant: Token has been expired or revoked.")


def test_what_the_caller_answers_inside_stays_and_other_errors_pass_through():
    with one_line("GCS listing"):
        try:
            raise gexc.NotFound("no such object")
        except gexc.NotFound:
            pass
    with pytest.raises(ValueError, match="not a Google"), one_line("GCS listing"):
        raise ValueError("not a Google call's failure")
    with pytest.raises(PipelineError, match="GCS listing failed: 404"), one_line("GCS listing"):
        raise gexc.NotFound("re-raised NotFound becomes the one line")


def test_logged_retries_stop_after_the_attempts_and_log_each(caplog: pytest.LogCaptureFixture):
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise gexc.ServiceUnavailable("try later")

    base = Retry(predicate=if_transient_error, initial=0.001, maximum=0.001, timeout=30)
    retry = logged(base, "GCS upload of x", logging.getLogger("t"), attempts=3)
    with caplog.at_level(logging.WARNING), pytest.raises(gexc.ServiceUnavailable):
        retry(flaky)()
    assert calls == 3
    assert [r.getMessage() for r in caplog.records] == [
        "GCS upload of x: attempt 1/3 failed, retrying: 503 try later",
        "GCS upload of x: attempt 2/3 failed, retrying: 503 try later",
    ]
