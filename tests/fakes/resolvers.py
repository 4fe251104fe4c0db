"""Resolvers to inject into the SSRF guard: no real DNS in tests.

``StaticResolver`` answers from a table; ``RebindingResolver`` answers one thing first and
something else afterwards, the shape of a DNS-rebinding attack. Both record every question,
so a test can prove how many lookups a fetch made.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence


class StaticResolver:
    """Answers host names from a fixed table; unknown names do not resolve."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {host.lower(): list(addresses) for host, addresses in table.items()}
        self.questions: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.questions.append((host, port))
        return list(self.table.get(host.lower(), []))

    def asked(self, host: str) -> int:
        """How many times ``host`` was looked up."""
        return sum(1 for asked, _ in self.questions if asked == host.lower())


class RebindingResolver(StaticResolver):
    """Answers ``first`` to the first question about ``host`` and ``then`` to every later one."""

    def __init__(
        self,
        host: str,
        first: Sequence[str],
        then: Sequence[str],
        others: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(others or {})
        self.host = host.lower()
        self.first = list(first)
        self.then = list(then)

    def __call__(self, host: str, port: int) -> list[str]:
        if host.lower() != self.host:
            return super().__call__(host, port)
        with self._lock:
            earlier = self.asked(host)
            self.questions.append((host.lower(), port))
        return list(self.first if earlier == 0 else self.then)


class FailingResolver:
    """A resolver whose every lookup fails (a SERVFAIL, a timeout)."""

    def __call__(self, host: str, port: int) -> list[str]:
        raise OSError(f"cannot resolve {host}")
