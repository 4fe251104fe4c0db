"""podscribe: podcast episodes in, transcripts out.

The shared package behind the submit and dispatch Cloud Functions and the Vertex AI
transcription job. Modules do one thing each; see the README's architecture section.
"""

from podscribe.errors import PodscribeError
from podscribe.jobs import Job, JobStatus
from podscribe.settings import Settings, get_settings

__all__ = ["Job", "JobStatus", "PodscribeError", "Settings", "get_settings"]
__version__ = "0.1.0"
