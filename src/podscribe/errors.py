"""podscribe's errors: one base, a stable ``code`` each.

The ``code`` is a contract: API callers see it in problem documents, a failed job records it,
and the README documents every one. Rename nothing; add new classes instead.

    PodscribeError
    ├── SettingsError                  settings_invalid
    ├── DatabaseUnavailableError       database_unavailable        (503)
    ├── JobError
    │   ├── JobNotFoundError           job_not_found               (404)
    │   ├── IllegalTransitionError     illegal_transition          (409)
    │   └── JobStateConflictError      job_state_conflict          (409)
    ├── RequestError                   (the submit API's input errors)
    │   ├── UnauthorizedError          unauthorized                (401)
    │   ├── InvalidRequestError        invalid_request             (400)
    │   ├── PayloadTooLargeError       payload_too_large           (413)
    │   ├── UnsupportedMediaTypeError  unsupported_media_type      (415)
    │   ├── RateLimitedError           rate_limited                (429)
    │   ├── TranscriptNotReadyError    transcript_not_ready        (409)
    │   ├── TranscriptGoneError        transcript_gone             (410)
    │   ├── RouteNotFoundError         not_found                   (404)
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
    └── WorkerFailedError              worker_failed      (the launched job died)
"""

from __future__ import annotations

from typing import ClassVar


class PodscribeError(Exception):
    """Base of every podscribe error.

    Attributes:
        code: stable machine-readable identifier.
        http_status: the HTTP status that fits when an API caller sees it.
        title: short human summary of the class of problem (problem+json ``title``).
        transient: whether trying again later may succeed.
    """

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    transient: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SettingsError(PodscribeError):
    code = "settings_invalid"
    title = "Invalid configuration"


class DatabaseUnavailableError(PodscribeError):
    code = "database_unavailable"
    http_status = 503
    title = "Database unavailable"
    transient = True


class JobError(PodscribeError):
    code = "job_error"
    http_status = 409
    title = "Job error"


class JobNotFoundError(JobError):
    code = "job_not_found"
    http_status = 404
    title = "Job not found"


class IllegalTransitionError(JobError):
    code = "illegal_transition"
    title = "Illegal job state transition"


class JobStateConflictError(JobError):
    """The row was not in the state the transition expected (someone else moved it)."""

    code = "job_state_conflict"
    title = "Job state changed concurrently"


class RequestError(PodscribeError):
    code = "invalid_request"
    http_status = 400
    title = "Invalid request"


class UnauthorizedError(RequestError):
    code = "unauthorized"
    http_status = 401
    title = "Unauthorized"


class InvalidRequestError(RequestError):
    code = "invalid_request"
    http_status = 400
    title = "Invalid request"


class PayloadTooLargeError(RequestError):
    code = "payload_too_large"
    http_status = 413
    title = "Payload too large"


class UnsupportedMediaTypeError(RequestError):
    code = "unsupported_media_type"
    http_status = 415
    title = "Unsupported media type"


class RateLimitedError(RequestError):
    code = "rate_limited"
    http_status = 429
    title = "Too many requests"
    transient = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TranscriptNotReadyError(RequestError):
    code = "transcript_not_ready"
    http_status = 409
    title = "Transcript not ready"


class TranscriptGoneError(RequestError):
    """A succeeded job's transcript is no longer in storage (a retention rule, a person)."""

    code = "transcript_gone"
    http_status = 410
    title = "Transcript gone"


class RouteNotFoundError(RequestError):
    """No API resource lives at the requested path."""

    code = "not_found"
    http_status = 404
    title = "Not found"


class MethodNotAllowedError(RequestError):
    """The path exists, but not for this HTTP method."""

    code = "method_not_allowed"
    http_status = 405
    title = "Method not allowed"

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class EpisodeLinkError(PodscribeError):
    code = "invalid_episode_url"
    http_status = 422
    title = "Not an Apple Podcasts episode URL"


class NotApplePodcastsError(EpisodeLinkError):
    code = "not_apple_podcasts"


class NotAnEpisodeError(EpisodeLinkError):
    code = "not_an_episode"
    title = "The link names a show, not an episode"


class FetchError(PodscribeError):
    code = "fetch_failed"
    http_status = 502
    title = "Fetch failed"


class DownloadRefusedError(FetchError):
    code = "download_refused"
    http_status = 422
    title = "Address refused"


class TooLargeError(FetchError):
    code = "too_large"
    http_status = 422
    title = "Too large"


class FetchTimeoutError(FetchError):
    code = "fetch_timeout"
    title = "Fetch timed out"
    transient = True


class FetchFailedError(FetchError):
    code = "fetch_failed"
    title = "Fetch failed"
    transient = True


class UpstreamStatusError(FetchError):
    code = "upstream_status"
    title = "Upstream refused"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UpstreamThrottledError(UpstreamStatusError):
    """The server said 429: slow down and try again later."""

    code = "upstream_throttled"
    title = "Upstream rate limit"
    transient = True

    def __init__(self, message: str, status: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class TlsVerificationError(FetchError):
    """The server's certificate does not verify for the host name that was asked for."""

    code = "tls_verification_failed"
    title = "TLS verification failed"


class TooManyRedirectsError(FetchError):
    code = "too_many_redirects"
    title = "Too many redirects"


class NotAudioError(FetchError):
    code = "not_audio"
    http_status = 422
    title = "Not audio"


class UnsafeDocumentError(FetchError):
    code = "unsafe_document"
    http_status = 422
    title = "Unsafe document"


class EpisodeNotFoundError(PodscribeError):
    code = "episode_not_found"
    http_status = 404
    title = "Episode not found"


class AmbiguousEpisodeError(PodscribeError):
    code = "episode_ambiguous"
    http_status = 422
    title = "Episode ambiguous"


class TooLongError(PodscribeError):
    code = "too_long"
    http_status = 422
    title = "Episode too long"


class DecodeFailedError(PodscribeError):
    code = "decode_failed"
    http_status = 422
    title = "Audio could not be decoded"


class TranscriptionFailedError(PodscribeError):
    code = "transcription_failed"
    title = "Transcription failed"


class StorageError(PodscribeError):
    code = "storage_failed"
    http_status = 503
    title = "Storage unavailable"
    transient = True


class LaunchError(PodscribeError):
    code = "launch_failed"
    http_status = 503
    title = "Launch failed"
    transient = True


class CapacityError(LaunchError):
    code = "capacity_exhausted"
    title = "No accelerator capacity"


class PublishError(PodscribeError):
    code = "publish_failed"
    http_status = 503
    title = "Could not publish"
    transient = True


class MalformedMessageError(PodscribeError):
    """A message that can never be processed: acknowledge it, never retry it."""

    code = "malformed_message"
    http_status = 400
    title = "Malformed message"


class WorkerFailedError(PodscribeError):
    """The launched job ended (FAILED, CANCELLED, a non-zero exit) without finishing the row."""

    code = "worker_failed"
    title = "The transcription job failed"


class WebhookSecretUnavailableError(PodscribeError):
    """The configured webhook signing secret could not be read: nothing is sent unsigned."""

    code = "webhook_secret_unavailable"
    title = "Webhook secret unavailable"
