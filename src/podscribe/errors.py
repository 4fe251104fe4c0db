"""podscribe's errors: one base, a stable ``code`` each.

The ``code`` is a contract: API callers see it in problem documents, a failed job records it,
and the README documents every one. Rename nothing; add new classes instead.

    PodscribeError
    ├── SettingsError                  settings_invalid
    ├── DatabaseUnavailableError       database_unavailable        (503)
    ├── JobError
    │   ├── JobNotFoundError           job_not_found               (404)
    │   ├── IllegalTransitionError     illegal_transition          (409)
    │   ├── JobStateConflictError      job_state_conflict          (409)
    │   └── JobActiveError             job_active                  (409)
    ├── RequestError                   (the submit API's input errors)
    │   ├── UnauthorizedError          unauthorized                (401)
    │   ├── InvalidRequestError        invalid_request             (400)
    │   ├── PayloadTooLargeError       payload_too_large           (413)
    │   ├── UnsupportedMediaTypeError  unsupported_media_type      (415)
    │   ├── RateLimitedError           rate_limited                (429)
    │   │   ├── TooManyActiveJobsError too_many_active_jobs        (429)
    │   │   └── LaunchBudgetExhaustedError launch_budget_exhausted (429)
    │   ├── UnsupportedLanguageError   unsupported_language        (422)
    │   ├── IdempotencyKeyReusedError  idempotency_key_reused      (422)
    │   ├── IdempotencyKeyInUseError   idempotency_key_in_use      (409)
    │   ├── TranscriptNotReadyError    transcript_not_ready        (409)
    │   ├── TranscriptGoneError        transcript_gone             (410)
    │   ├── RouteNotFoundError         not_found                   (404)
    │   ├── WebhooksDisabledError      webhooks_disabled           (404)
    │   ├── ShareLinkNotFoundError     share_link_not_found        (404)
    │   ├── TooManyShareLinksError     too_many_share_links        (409)
    │   ├── UnknownSpeakerError        unknown_speaker             (422)
    │   ├── InvalidSpeakerNameError    invalid_speaker_name        (422)
    │   ├── InvalidLineLimitsError     invalid_line_limits         (422)
    │   └── MethodNotAllowedError      method_not_allowed          (405)
    ├── EpisodeLinkError               (422: a URL that names no episode)
    │   ├── NotApplePodcastsError      not_apple_podcasts
    │   └── NotAnEpisodeError          not_an_episode
    ├── FetchError                     (anything fetched for a user)
    │   ├── DownloadRefusedError       download_refused   (the SSRF guard said no)
    │   ├── TooLargeError              too_large
    │   ├── FetchTimeoutError          fetch_timeout      (transient)
    │   ├── FetchFailedError           fetch_failed       (transient: connection, 5xx)
    │   ├── UpstreamStatusError        upstream_status    (permanent 4xx)
    │   │   └── UpstreamThrottledError upstream_throttled (429, transient)
    │   ├── TlsVerificationError       tls_verification_failed
    │   ├── TooManyRedirectsError      too_many_redirects
    │   ├── NotAudioError              not_audio
    │   └── UnsafeDocumentError        unsafe_document    (XML bombs, entities)
    ├── EpisodeNotFoundError           episode_not_found
    ├── AmbiguousEpisodeError          episode_ambiguous
    ├── TooLongError                   too_long
    ├── DecodeFailedError              decode_failed
    ├── TranscriptionFailedError       transcription_failed
    ├── StorageError                   storage_failed     (transient)
    ├── PublishError                   publish_failed     (transient)
    ├── WebhookSecretUnavailableError  webhook_secret_unavailable
    ├── MalformedMessageError          malformed_message  (acknowledge, never retry)
    ├── LaunchError                    launch_failed      (transient)
    │   └── CapacityError              capacity_exhausted
    ├── WorkerFailedError              worker_failed      (the launched job died)
    └── AttemptsExhaustedError         attempts_exhausted (launched max_attempts times)

Callers (problem documents, a failed job's ``error.message``, webhooks) see only a class's
``public_message``, fixed per code, except for errors about the caller's own input
(``detail_public``); the instance's ``message``, which may name internal hosts, addresses or
processes, goes to the logs only.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmbiguousEpisodeError",
    "AttemptsExhaustedError",
    "CapacityError",
    "DatabaseUnavailableError",
    "DecodeFailedError",
    "DownloadRefusedError",
    "EpisodeLinkError",
    "EpisodeNotFoundError",
    "FetchError",
    "FetchFailedError",
    "FetchTimeoutError",
    "IdempotencyKeyInUseError",
    "IdempotencyKeyReusedError",
    "IllegalTransitionError",
    "InvalidLineLimitsError",
    "InvalidRequestError",
    "InvalidSpeakerNameError",
    "JobActiveError",
    "JobError",
    "JobNotFoundError",
    "JobStateConflictError",
    "LaunchBudgetExhaustedError",
    "LaunchError",
    "MalformedMessageError",
    "MethodNotAllowedError",
    "NotAnEpisodeError",
    "NotApplePodcastsError",
    "NotAudioError",
    "PayloadTooLargeError",
    "PodscribeError",
    "PublishError",
    "RateLimitedError",
    "RequestError",
    "RouteNotFoundError",
    "SettingsError",
    "ShareLinkNotFoundError",
    "StorageError",
    "TlsVerificationError",
    "TooLargeError",
    "TooLongError",
    "TooManyActiveJobsError",
    "TooManyRedirectsError",
    "TooManyShareLinksError",
    "TranscriptGoneError",
    "TranscriptNotReadyError",
    "TranscriptionFailedError",
    "UnauthorizedError",
    "UnknownSpeakerError",
    "UnsafeDocumentError",
    "UnsupportedLanguageError",
    "UnsupportedMediaTypeError",
    "UpstreamStatusError",
    "UpstreamThrottledError",
    "WebhookSecretUnavailableError",
    "WebhooksDisabledError",
    "WorkerFailedError",
    "is_episode_fault",
    "is_transient",
    "public_message",
]


class PodscribeError(Exception):
    """Base of every podscribe error.

    Attributes:
        code: stable machine-readable identifier.
        http_status: the HTTP status that fits when an API caller sees it.
        title: short human summary of the class of problem (problem+json ``title``).
        transient: whether trying again later may succeed.
        episode_fault: the episode itself is the problem (it does not exist, is refused, too
            long, not audio): trying again soon would fail the same way and spend a launch.
    """

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    transient: ClassVar[bool] = False
    episode_fault: ClassVar[bool] = False
    public_message: ClassVar[str] = "Something went wrong on our side; it has been logged."
    detail_public: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Classes that share a code (RequestError and InvalidRequestError) share its message:
        # the first one defined, the more general, states it.
        _PUBLIC_MESSAGES.setdefault(cls.code, cls.public_message)
        if cls.episode_fault:
            _EPISODE_FAULT_CODES.add(cls.code)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def caller_message(self) -> str:
        """What a caller may be told: the detail when it is about their own input, else the
        code's fixed message (the detail may name internal hosts, addresses or paths)."""
        return self.message if self.detail_public else self.public_message


_PUBLIC_MESSAGES: dict[str, str] = {PodscribeError.code: PodscribeError.public_message}
_EPISODE_FAULT_CODES: set[str] = set()


def is_episode_fault(code: str | None) -> bool:
    """Whether a failed job's code blames the episode (see ``PodscribeError.episode_fault``)."""
    return code in _EPISODE_FAULT_CODES


def public_message(code: str) -> str:
    """The fixed, caller-safe message of an error code (a generic one for unknown codes).

    Job rows, API responses and webhooks carry only this; the detail goes to the logs.
    """
    return _PUBLIC_MESSAGES.get(code, PodscribeError.public_message)


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed: a podscribe error that says so.

    The default test of :func:`podscribe.retry.retrying`; other libraries' faults are
    translated into podscribe errors where they happen, so this is the only test needed.
    """
    return isinstance(error, PodscribeError) and error.transient


class SettingsError(PodscribeError):
    code = "settings_invalid"
    public_message = "The service is misconfigured; it has been logged."
    title = "Invalid configuration"


class DatabaseUnavailableError(PodscribeError):
    code = "database_unavailable"
    public_message = "The database is unavailable; try again shortly."
    http_status = 503
    title = "Database unavailable"
    transient = True


class JobError(PodscribeError):
    code = "job_error"
    public_message = "The job could not be changed."
    http_status = 409
    title = "Job error"


class JobNotFoundError(JobError):
    code = "job_not_found"
    detail_public = True  # about the caller's own input, written for them
    public_message = "No such job."
    http_status = 404
    title = "Job not found"


class IllegalTransitionError(JobError):
    code = "illegal_transition"
    public_message = "The job cannot move to that state."
    title = "Illegal job state transition"


class JobStateConflictError(JobError):
    """The row was not in the state the transition expected (someone else moved it)."""

    code = "job_state_conflict"
    public_message = "The job changed meanwhile; ask again."
    title = "Job state changed concurrently"


class JobActiveError(JobError):
    """The last key with access asked to delete a job that is still being transcribed."""

    code = "job_active"
    public_message = "The job is still being transcribed; delete it once it has ended."
    title = "Job still active"


class RequestError(PodscribeError):
    code = "invalid_request"
    detail_public = True  # about the caller's own input, written for them
    public_message = "The request is invalid."
    http_status = 400
    title = "Invalid request"


class UnauthorizedError(RequestError):
    code = "unauthorized"
    public_message = "Authentication required: send Authorization: Bearer <key>."
    http_status = 401
    title = "Unauthorized"


class InvalidRequestError(RequestError):
    code = "invalid_request"
    public_message = "The request is invalid."
    http_status = 400
    title = "Invalid request"


class PayloadTooLargeError(RequestError):
    code = "payload_too_large"
    public_message = "The request body is too large."
    http_status = 413
    title = "Payload too large"


class UnsupportedMediaTypeError(RequestError):
    code = "unsupported_media_type"
    public_message = "Send the body as application/json."
    http_status = 415
    title = "Unsupported media type"


class RateLimitedError(RequestError):
    code = "rate_limited"
    public_message = "Too many requests; wait as Retry-After says."
    http_status = 429
    title = "Too many requests"
    transient = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyActiveJobsError(RateLimitedError):
    """The key already has ``PODSCRIBE_KEY_MAX_ACTIVE_JOBS`` jobs queued or running."""

    code = "too_many_active_jobs"
    public_message = "Too many of your jobs are queued or running; wait for one to finish."
    title = "Too many active jobs"


class LaunchBudgetExhaustedError(RateLimitedError):
    """The key started ``PODSCRIBE_KEY_LAUNCHES_PER_HOUR`` jobs in the last hour."""

    code = "launch_budget_exhausted"
    public_message = "This key has started as many jobs as it may this hour; see Retry-After."
    title = "Launch budget exhausted"


class UnsupportedLanguageError(RequestError):
    """``language`` names no language the model that would transcribe the job knows."""

    code = "unsupported_language"
    public_message = "The model cannot transcribe that language."
    http_status = 422
    title = "Unsupported language"


class IdempotencyKeyReusedError(RequestError):
    """An ``Idempotency-Key`` sent again with a different request (method, path or body)."""

    code = "idempotency_key_reused"
    public_message = "This Idempotency-Key was used for a different request; use a new key."
    http_status = 422
    title = "Idempotency key reused"


class IdempotencyKeyInUseError(RequestError):
    """The first request with this ``Idempotency-Key`` is still being processed."""

    code = "idempotency_key_in_use"
    public_message = "A request with this Idempotency-Key is still being processed; retry."
    http_status = 409
    title = "Idempotency key in use"


class TranscriptNotReadyError(RequestError):
    code = "transcript_not_ready"
    public_message = "The transcript is not ready."
    http_status = 409
    title = "Transcript not ready"


class TranscriptGoneError(RequestError):
    """A succeeded job's transcript is no longer in storage (a retention rule, a person)."""

    code = "transcript_gone"
    public_message = "The transcript is no longer stored; submit the episode again."
    http_status = 410
    title = "Transcript gone"


class RouteNotFoundError(RequestError):
    """No API resource lives at the requested path."""

    code = "not_found"
    public_message = "No resource at this path."
    http_status = 404
    title = "Not found"


class WebhooksDisabledError(RequestError):
    """No master webhook secret is configured: webhooks are unsigned, no key has a secret."""

    code = "webhooks_disabled"
    public_message = "Webhook signing is not configured on this deployment."
    http_status = 404
    title = "Webhook signing disabled"


class ShareLinkNotFoundError(RequestError):
    """No live share link of this key and job has that id (revoked, or never made)."""

    code = "share_link_not_found"
    public_message = "No such share link."
    http_status = 404
    title = "Share link not found"


class TooManyShareLinksError(RequestError):
    """The key already has the most live share links one job may have: revoke one first."""

    code = "too_many_share_links"
    public_message = "Too many live share links for this transcript; revoke one first."
    http_status = 409
    title = "Too many share links"


class UnknownSpeakerError(RequestError):
    """A rename names a label the transcript does not have."""

    code = "unknown_speaker"
    public_message = "The transcript has no speaker with that label."
    http_status = 422
    title = "Unknown speaker"


class InvalidSpeakerNameError(RequestError):
    """A speaker's name is empty, too long or holds control characters."""

    code = "invalid_speaker_name"
    public_message = "A speaker name must be 1 to 80 printable characters."
    http_status = 422
    title = "Invalid speaker name"


class InvalidLineLimitsError(RequestError):
    """``max_line_chars`` or ``max_lines`` is outside what the caption formats allow."""

    code = "invalid_line_limits"
    public_message = "max_line_chars or max_lines is out of range."
    http_status = 422
    title = "Invalid line limits"


class MethodNotAllowedError(RequestError):
    """The path exists, but not for this HTTP method."""

    code = "method_not_allowed"
    public_message = "This method is not allowed here; see Allow."
    http_status = 405
    title = "Method not allowed"

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class EpisodeLinkError(PodscribeError):
    code = "invalid_episode_url"
    detail_public = True  # about the caller's own input, written for them
    public_message = "The link is not a valid Apple Podcasts episode link."
    http_status = 422
    title = "Not an Apple Podcasts episode URL"


class NotApplePodcastsError(EpisodeLinkError):
    code = "not_apple_podcasts"
    public_message = "The link is not an Apple Podcasts link."


class NotAnEpisodeError(EpisodeLinkError):
    code = "not_an_episode"
    public_message = "The link names a show, not an episode: share the episode's link."
    title = "The link names a show, not an episode"


class FetchError(PodscribeError):
    code = "fetch_failed"
    public_message = "The episode's audio or feed could not be fetched."
    http_status = 502
    title = "Fetch failed"


class DownloadRefusedError(FetchError):
    code = "download_refused"
    episode_fault = True
    public_message = "A link of this episode points at an address that is not allowed."
    http_status = 422
    title = "Address refused"


class TooLargeError(FetchError):
    code = "too_large"
    episode_fault = True
    public_message = "A document or the audio of this episode is larger than allowed."
    http_status = 422
    title = "Too large"


class FetchTimeoutError(FetchError):
    code = "fetch_timeout"
    public_message = "The episode's host took too long to answer."
    title = "Fetch timed out"
    transient = True


class FetchFailedError(FetchError):
    """No usable answer: the connection failed, or the server answered 5xx (``status``)."""

    code = "fetch_failed"
    public_message = FetchError.public_message  # one code, one message
    title = "Fetch failed"
    transient = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamStatusError(FetchError):
    code = "upstream_status"
    episode_fault = True
    public_message = "The episode's host refused the request."
    title = "Upstream refused"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UpstreamThrottledError(UpstreamStatusError):
    """The server said 429: slow down and try again later."""

    code = "upstream_throttled"
    episode_fault = False
    public_message = "The episode's host is rate limiting us; submit again later."
    title = "Upstream rate limit"
    transient = True

    def __init__(self, message: str, status: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class TlsVerificationError(FetchError):
    """The server's certificate does not verify for the host name that was asked for."""

    code = "tls_verification_failed"
    episode_fault = True
    public_message = "The episode's host presented a certificate that does not verify."
    title = "TLS verification failed"


class TooManyRedirectsError(FetchError):
    code = "too_many_redirects"
    episode_fault = True
    public_message = "A link of this episode redirects too many times."
    title = "Too many redirects"


class NotAudioError(FetchError):
    code = "not_audio"
    episode_fault = True
    public_message = "The episode's enclosure is not audio."
    http_status = 422
    title = "Not audio"


class UnsafeDocumentError(FetchError):
    code = "unsafe_document"
    episode_fault = True
    public_message = "The episode's feed or page was refused as unsafe to parse."
    http_status = 422
    title = "Unsafe document"


class EpisodeNotFoundError(PodscribeError):
    code = "episode_not_found"
    episode_fault = True
    public_message = "The episode could not be found in its show's feed."
    http_status = 404
    title = "Episode not found"


class AmbiguousEpisodeError(PodscribeError):
    code = "episode_ambiguous"
    episode_fault = True
    public_message = "The feed lists more than one episode matching this link."
    http_status = 422
    title = "Episode ambiguous"


class TooLongError(PodscribeError):
    code = "too_long"
    episode_fault = True
    public_message = "The episode is longer than this service accepts."
    http_status = 422
    title = "Episode too long"


class DecodeFailedError(PodscribeError):
    code = "decode_failed"
    episode_fault = True
    public_message = "The episode's audio could not be decoded."
    http_status = 422
    title = "Audio could not be decoded"


class TranscriptionFailedError(PodscribeError):
    code = "transcription_failed"
    public_message = "Transcription failed; it has been logged."
    title = "Transcription failed"


class StorageError(PodscribeError):
    code = "storage_failed"
    public_message = "Storage is unavailable; try again shortly."
    http_status = 503
    title = "Storage unavailable"
    transient = True


class LaunchError(PodscribeError):
    code = "launch_failed"
    public_message = "The transcription job could not be started."
    http_status = 503
    title = "Launch failed"
    transient = True


class CapacityError(LaunchError):
    code = "capacity_exhausted"
    public_message = "No transcription capacity is free; try again later."
    title = "No accelerator capacity"


class PublishError(PodscribeError):
    code = "publish_failed"
    public_message = "The job could not be queued; try again shortly."
    http_status = 503
    title = "Could not publish"
    transient = True


class MalformedMessageError(PodscribeError):
    """A message that can never be processed: acknowledge it, never retry it."""

    code = "malformed_message"
    public_message = "A malformed message was dropped."
    http_status = 400
    title = "Malformed message"


class WorkerFailedError(PodscribeError):
    """The launched job ended (FAILED, CANCELLED, a non-zero exit) without finishing the row."""

    code = "worker_failed"
    public_message = "The transcription job stopped unexpectedly."
    title = "The transcription job failed"


class AttemptsExhaustedError(PodscribeError):
    """The job was launched, or stopped answering, as many times as allowed."""

    code = "attempts_exhausted"
    public_message = "The job was tried the allowed number of times without finishing."
    title = "Attempts exhausted"


class WebhookSecretUnavailableError(PodscribeError):
    """The configured webhook signing secret could not be read: nothing is sent unsigned."""

    code = "webhook_secret_unavailable"
    public_message = "Webhooks could not be signed."
    title = "Webhook secret unavailable"
