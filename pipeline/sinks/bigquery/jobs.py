"""BigQuery jobs under deterministic ids: resumed on 409, retried under the next id when they
fail for a transient reason, reported with the job's own message otherwise."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import bigquery

from pipeline.domain.errors import PipelineError
from pipeline.util.gcp_retry import FAILED, NO_ANSWER, logged, why

log = logging.getLogger(__name__)

TRANSIENT_REASONS = frozenset({"backendError", "rateLimitExceeded", "internalError"})
# BigQuery cancels a transaction when another one changed the same table meanwhile, with
# reason invalidQuery: "Transaction is aborted due to concurrent update against table …" or
# "Could not serialize access to table … due to concurrent update". Only one of the two runs;
# the cancelled one can run again.
CONCURRENT_UPDATE = "due to concurrent update"
MAX_ATTEMPTS = 4  # jobs run per load and per swap, in one run
RETRY_WAIT = 2.0  # seconds before the 2nd attempt; doubles, at most 30 s
MAX_JOB_IDS = 1000  # ids tried past the ones earlier runs' failed jobs hold


class Job(Protocol):
    """What is used of a google-cloud-bigquery LoadJob or QueryJob."""

    job_id: str
    state: str

    @property
    def error_result(self) -> dict[str, str] | None: ...

    @property
    def errors(self) -> list[dict[str, str]] | None: ...

    def result(self) -> object: ...


def insert_retry(what: str) -> Retry:
    """The BigQuery client's own retry of jobs.insert, logged (pipeline.util.gcp_retry). A
    retried insert of a job that was made after all gets 409, which run_job resumes."""
    return logged(bigquery.DEFAULT_RETRY, what, log)


def run_job(
    client: bigquery.Client,
    location: str,
    what: str,
    base: str,
    submit: Callable[[str], Job],
    still_useful: Callable[[Job], bool] = lambda job: True,
) -> Job:
    """Run a job under a deterministic id; resume it on 409; retry transient failures under
    the next attempt number.

    A 409 means the id is taken: by an earlier run, or by this one when the answer to
    jobs.insert was lost and the client sent it again. A job still running, or done and still
    of use, is resumed. One that failed, or whose result is gone (``still_useful`` says so: its
    stage was dropped after an earlier swap, say), is passed over: BigQuery never reuses a job
    id, so the next number runs the job afresh. Passed-over ids are not attempts of this run."""
    tries, last = 0, ""
    for n in range(1, MAX_JOB_IDS + 1):
        if tries == MAX_ATTEMPTS:
            break
        job_id = f"{base}_{n}"
        counted = False
        try:
            job = submit(job_id)
        except gexc.Conflict:
            job = _get_job(client, job_id, location, what)
            if job.state == "DONE" and job.error_result:
                # Resuming a failed job would fail the month for good (every rerun finds the
                # same id taken, by the same failure), even after an outage or a missing
                # permission is over. Should the job be this run's own (its jobs.insert answer
                # lost), the next id runs it once more, and fails the same way if the failure
                # is permanent.
                log.info(
                    "%s: job %s failed before (%s); the next id runs it again",
                    what,
                    job_id,
                    job.error_result.get("reason"),
                )
                continue
            if job.state == "DONE" and not still_useful(job):
                log.info("%s: job %s is done but its result is gone; rerunning", what, job_id)
                continue
            log.info("%s: resuming existing job %s (%s)", what, job_id, job.state)
        except (
            gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests, *NO_ANSWER
        ) as e:  # fmt: skip
            # The client's own retries got no answer, so the job may or may not exist: the
            # same id, after the wait, is resumed if it does, or the next id runs it.
            tries, counted, last = tries + 1, True, why(e)
            if tries == MAX_ATTEMPTS:
                break
            wait_to_retry(what, tries, last)
            try:
                job = _get_job(client, job_id, location, what)
            except gexc.NotFound:
                continue
        except gexc.GoogleAPICallError as e:
            raise PipelineError(f"{what}: {e.message}") from None
        except FAILED as e:  # credentials revoked or expired mid-run, say
            raise PipelineError(f"{what}: jobs.insert {job_id} failed: {why(e)}") from None
        if not counted:
            tries += 1
        try:
            job.result()
            return job
        except NO_ANSWER as e:
            # Waiting lost touch with BigQuery; the job may still finish. A rerun finds its id
            # taken and resumes it, or runs the next id if it failed.
            raise PipelineError(
                f"{what}: job {job_id}: no answer while waiting for it: {why(e)}"
            ) from None
        except gexc.GoogleAPICallError as e:
            reason = (job.error_result or {}).get("reason", "")
            message = (job.error_result or {}).get("message") or e.message
            if reason in TRANSIENT_REASONS or CONCURRENT_UPDATE in message:
                # The job ended DONE with errorResult backendError, rateLimitExceeded or
                # internalError, or BigQuery cancelled its transaction for another one that
                # changed the same table (two hosts' swaps: each writes the ledger and its
                # colour's table). BigQuery applies a load job or a transaction only when it
                # succeeds, and both are repeatable here anyway (a WRITE_TRUNCATE stage;
                # DELETE the month, then INSERT): the next id runs the job again.
                last = f"{reason}: {message}"
                if tries < MAX_ATTEMPTS:
                    wait_to_retry(what, tries, last)
                continue
            detail = "; ".join(
                err.get("message", "") for err in (job.errors or []) if err.get("message")
            )
            raise PipelineError(
                f"{what}: job {job_id} failed: {message}"
                + (f" ({detail})" if detail and detail != message else "")
            ) from None
        except FAILED as e:  # credentials revoked or expired while waiting for the job
            raise PipelineError(f"{what}: job {job_id}: waiting for it failed: {why(e)}") from None
    if tries < MAX_ATTEMPTS:
        raise PipelineError(f"{what}: job ids {base}_1 to _{MAX_JOB_IDS} are all taken")
    raise PipelineError(f"{what}: gave up after {MAX_ATTEMPTS} attempts ({last})")


def _get_job(client: bigquery.Client, job_id: str, location: str, what: str) -> Job:
    """jobs.get, retried as jobs.insert is (logged, bounded); NotFound is the caller's."""
    try:
        job: Job = client.get_job(
            job_id, location=location, retry=insert_retry(f"{what}: jobs.get {job_id}")
        )
        return job
    except gexc.NotFound:
        raise
    except FAILED as e:
        raise PipelineError(f"{what}: looking up job {job_id} failed: {why(e)}") from None


def wait_to_retry(what: str, tries: int, cause: str) -> None:
    # Jittered: two hosts whose swaps cancelled each other must not both come back at once.
    wait = min(RETRY_WAIT * 2 ** (tries - 1), 30.0) * random.uniform(0.75, 1.25)
    log.warning(
        "%s: attempt %d/%d failed, retrying in %.1f s: %s", what, tries, MAX_ATTEMPTS, wait, cause
    )
    time.sleep(wait)
