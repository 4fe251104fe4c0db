"""``python -m podscribe.net_guard URL [URL ...]``: the SSRF guard's verdicts, one per line.

Each line is ``allow <url>`` or ``block <url>: <reason>``; only DNS resolution happens, no
other request, and the exit status is 0 once every URL has a verdict. The guard itself is
:mod:`podscribe.egress.guard`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from podscribe.egress.guard import Resolver, check_url
from podscribe.errors import SettingsError
from podscribe.settings import load_settings

__all__ = ["main"]


def _printable(text: str) -> str:
    """One line, whatever the input held: control characters become escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def main(argv: Sequence[str] | None = None, *, resolver: Resolver | None = None) -> int:
    """``python -m podscribe.net_guard URL [URL ...]``: print one verdict per URL.

    Args:
        argv: the URLs (default: ``sys.argv[1:]``).
        resolver: name resolution (default: the system's).

    Returns:
        0 once every URL has a verdict; 2 for a usage or configuration error.
    """
    urls = list(sys.argv[1:] if argv is None else argv)
    if not urls or urls[0] in {"-h", "--help"}:
        print("usage: python -m podscribe.net_guard URL [URL ...]", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"net_guard: {error.message}", file=sys.stderr)
        return 2
    for url in urls:
        decision = check_url(url, settings, resolver=resolver)
        if decision.allowed:
            print(f"allow {_printable(url)}")
        else:
            print(f"block {_printable(url)}: {_printable(decision.reason or 'refused')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
