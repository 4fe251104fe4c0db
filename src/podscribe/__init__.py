"""podscribe: podcast episodes in, transcripts out.

The shared package behind the submit and dispatch Cloud Functions and the transcription job.
Sub-packages by concern (see ``docs/architecture.md``):

- :mod:`podscribe.api`: the submit function's HTTP API;
- :mod:`podscribe.podcasts`: Apple Podcasts links, lookups, pages and feeds;
- :mod:`podscribe.egress`: the SSRF guard and the guarded fetcher;
- :mod:`podscribe.transcription`: faster-whisper, windows, audio, segments, formats;
- :mod:`podscribe.jobs`: the job row, dispatch, sweep, webhooks, launchers;

and one module each for settings, errors, the database, storage, messaging, logging and rate
limits. The names below are the public entry points (design contract 7).
"""

from podscribe import errors
from podscribe.egress import SafeFetcher, check_url
from podscribe.errors import (
    AmbiguousEpisodeError,
    AttemptsExhaustedError,
    CapacityError,
    DatabaseUnavailableError,
    DecodeFailedError,
    DownloadRefusedError,
    EpisodeLinkError,
    EpisodeNotFoundError,
    FetchError,
    FetchFailedError,
    FetchTimeoutError,
    IllegalTransitionError,
    InvalidRequestError,
    JobActiveError,
    JobError,
    JobNotFoundError,
    JobStateConflictError,
    LaunchError,
    MalformedMessageError,
    MethodNotAllowedError,
    NotAnEpisodeError,
    NotApplePodcastsError,
    NotAudioError,
    PayloadTooLargeError,
    PodscribeError,
    PublishError,
    RateLimitedError,
    RequestError,
    RouteNotFoundError,
    SettingsError,
    StorageError,
    TlsVerificationError,
    TooLargeError,
    TooLongError,
    TooManyRedirectsError,
    TranscriptGoneError,
    TranscriptionFailedError,
    TranscriptNotReadyError,
    UnauthorizedError,
    UnsafeDocumentError,
    UnsupportedMediaTypeError,
    UpstreamStatusError,
    UpstreamThrottledError,
    WebhookSecretUnavailableError,
    WorkerFailedError,
)
from podscribe.jobs import Job, JobStatus
from podscribe.podcasts import (
    Episode,
    EpisodeRef,
    clear_lookup_cache,
    find_entry,
    parse_episode_url,
    parse_feed,
    resolve_episode,
)
from podscribe.settings import Settings, get_settings, load_settings

__all__ = [
    "AmbiguousEpisodeError",
    "AttemptsExhaustedError",
    "CapacityError",
    "DatabaseUnavailableError",
    "DecodeFailedError",
    "DownloadRefusedError",
    "Episode",
    "EpisodeLinkError",
    "EpisodeNotFoundError",
    "EpisodeRef",
    "FetchError",
    "FetchFailedError",
    "FetchTimeoutError",
    "IllegalTransitionError",
    "InvalidRequestError",
    "Job",
    "JobActiveError",
    "JobError",
    "JobNotFoundError",
    "JobStateConflictError",
    "JobStatus",
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
    "SafeFetcher",
    "Settings",
    "SettingsError",
    "StorageError",
    "TlsVerificationError",
    "TooLargeError",
    "TooLongError",
    "TooManyRedirectsError",
    "TranscriptGoneError",
    "TranscriptNotReadyError",
    "TranscriptionFailedError",
    "UnauthorizedError",
    "UnsafeDocumentError",
    "UnsupportedMediaTypeError",
    "UpstreamStatusError",
    "UpstreamThrottledError",
    "WebhookSecretUnavailableError",
    "WorkerFailedError",
    "check_url",
    "clear_lookup_cache",
    "errors",
    "find_entry",
    "get_settings",
    "load_settings",
    "parse_episode_url",
    "parse_feed",
    "resolve_episode",
]
__version__ = "0.1.0"
