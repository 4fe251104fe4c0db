"""Egress: every request podscribe makes on a user's behalf.

- :mod:`podscribe.egress.guard`: may this URL be fetched? (the SSRF guard)
- :mod:`podscribe.egress.fetcher`: ``SafeFetcher``, the redirect loop with byte and time caps.
- :mod:`podscribe.egress.transport`: the httpx transport that connects only to checked
  addresses, with one deadline from connect to last byte; the guard in front of an injected one.
- :mod:`podscribe.egress.replies`: status, declared length, coding and media type of a reply.
- :mod:`podscribe.egress.content_coding`: bounded, incremental decompression.
- :mod:`podscribe.egress.sniffing`: is this body audio? (a verdict with a reason code)
"""

from podscribe.egress.fetcher import DownloadedAudio, FetchedDocument, SafeFetcher
from podscribe.egress.guard import GuardDecision, Resolver, check_url

__all__ = [
    "DownloadedAudio",
    "FetchedDocument",
    "GuardDecision",
    "Resolver",
    "SafeFetcher",
    "check_url",
]
