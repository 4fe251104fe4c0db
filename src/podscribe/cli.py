"""``podscribe``: transcribe Apple Podcasts episodes from the command line.

    podscribe transcribe <apple url> [--wait] [--format srt] [-o file]
    podscribe status <id>
    podscribe get <id> [--format vtt] [-o file]
    podscribe list [--status S] [--limit N] [--all | --cursor C]
    podscribe delete <id>
    podscribe search "<query>" [--limit N] [--cursor C]
    podscribe speakers <id> S1="Ann Example" [S2=] ...
    podscribe share <id> [--list | --revoke LINK_ID]

Talks to any deployment: ``PODSCRIBE_API_URL`` and ``PODSCRIBE_API_KEY``. A ``429`` is waited
out as its ``Retry-After`` asks (bounded; see :class:`~podscribe.client.PodscribeClient`), so
``--wait`` polling shares a key with other clients without failing.

Exit codes, for scripts: 0 done, 1 the job failed, 2 usage or configuration error,
3 the request was refused (4xx), 4 the service could not be reached or failed (5xx),
5 ``--wait`` ran out of time.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from podscribe.client import ApiError, PodscribeClient, WaitTimeoutError
from podscribe.errors import SettingsError
from podscribe.settings import load_settings

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = range(6)
FORMATS = ("txt", "srt", "vtt", "json")
STATUSES = ("queued", "dispatched", "running", "succeeded", "failed")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podscribe", description="Podcast transcripts.")
    commands = parser.add_subparsers(dest="command", required=True)
    transcribe = commands.add_parser("transcribe", help="submit an Apple Podcasts episode URL")
    transcribe.add_argument("url")
    transcribe.add_argument("--wait", action="store_true", help="wait and print the transcript")
    transcribe.add_argument("--format", choices=FORMATS, default="txt")
    transcribe.add_argument("-o", "--output", type=Path, help="write the transcript here")
    transcribe.add_argument("--language", help="e.g. en (detected when omitted)")
    transcribe.add_argument("--callback-url", help="webhook called when the job ends")
    transcribe.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait")
    status = commands.add_parser("status", help="show a job")
    status.add_argument("id")
    get = commands.add_parser("get", help="fetch a finished transcript")
    get.add_argument("id")
    get.add_argument("--format", choices=FORMATS, default="txt")
    get.add_argument("-o", "--output", type=Path)
    listing = commands.add_parser("list", help="list your jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument("--limit", type=int, help="jobs per page (1-100)")
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--all", action="store_true", help="every page, not just the first")
    pages.add_argument("--cursor", help="the page after the one that printed this cursor")
    delete = commands.add_parser("delete", help="give up your access to a job")
    delete.add_argument("id")
    commands.add_parser("webhook-secret", help="print the secret that verifies your webhooks")
    search = commands.add_parser("search", help="search what was said in your transcripts")
    search.add_argument("query", help='words (all must match), "a phrase", prefix*')
    search.add_argument("--limit", type=int, help="hits per page (1-50)")
    search.add_argument("--cursor", help="the page after the one that printed this cursor")
    speakers = commands.add_parser("speakers", help="name a transcript's speakers (for you)")
    speakers.add_argument("id")
    speakers.add_argument(
        "names", nargs="+", metavar="LABEL=NAME", help="S1=Ann; an empty NAME removes it"
    )
    share = commands.add_parser("share", help="make a public link per format of a transcript")
    share.add_argument("id")
    shared = share.add_mutually_exclusive_group()
    shared.add_argument("--list", action="store_true", help="your live links of the job")
    shared.add_argument("--revoke", metavar="LINK_ID", help="revoke a link: its URLs 404")
    return parser


def _job_line(job: dict[str, Any]) -> str:
    """``<id> <status> <progress>% <title>``: one job, for ``list``."""
    episode = job.get("episode") or {}
    title = episode.get("title") or job.get("source_url", "")
    progress = float(job.get("progress") or 0.0) * 100
    return f"{job['id']}  {job['status']:<10} {progress:5.1f}%  {title}"


def _list(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    if args.all:
        for job in client.iter_jobs(status=args.status, limit=args.limit):
            print(_job_line(job))
        return EXIT_OK
    page = client.list_jobs(status=args.status, limit=args.limit, cursor=args.cursor)
    for job in page["items"]:
        print(_job_line(job))
    if page.get("next_cursor"):
        # Unwrapped and plain: the cursor is copied as is.
        message = f"more: --cursor {page['next_cursor']} (or --all)"
        console.print(message, soft_wrap=True, highlight=False, markup=False)
    return EXIT_OK


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def hit_line(hit: dict[str, Any]) -> str:
    """``<id>  <start>-<end>  <title>: <snippet>``: one search hit, its snippet as plain text."""
    text = html.unescape(re.sub(r"</?mark>", "", str(hit.get("snippet", ""))))
    # What was said reaches a terminal: no control character (escape sequences) gets through.
    plain = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    span = f"{_clock(float(hit['start']))}-{_clock(float(hit['end']))}"
    return f"{hit['id']}  {span}  {hit.get('title', '')}: {' '.join(plain.split())}"


def _search(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    page = client.search(args.query, limit=args.limit, cursor=args.cursor)
    for hit in page["items"]:
        print(hit_line(hit))
    if page.get("next_cursor"):
        message = f"more: --cursor {page['next_cursor']}"
        console.print(message, soft_wrap=True, highlight=False, markup=False)
    return EXIT_OK


def wait_with_progress(
    client: PodscribeClient, job_id: str, *, timeout: float, console: Console
) -> dict[str, Any]:
    """Poll a job, drawing its progress, until it ends."""
    with Progress(
        TextColumn("[bold]{task.fields[status]:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("job", total=1.0, status="queued")

        def update(job: dict[str, Any]) -> None:
            progress.update(
                task, completed=float(job.get("progress") or 0.0), status=job.get("status", "?")
            )

        return client.wait(job_id, timeout=timeout, on_update=update)


def _emit(text: str, output: Path | None, console: Console) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


def _status(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    print(json.dumps(client.get(args.id), indent=2))
    return EXIT_OK


def _get(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    _emit(client.transcript(args.id, args.format), args.output, console)
    return EXIT_OK


def _delete(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    client.delete(args.id)
    console.print(f"deleted {args.id}")
    return EXIT_OK


def _webhook_secret(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    print(client.webhook_secret())
    return EXIT_OK


def _speakers(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    names: dict[str, str | None] = {}
    for pair in args.names:
        label, equals, name = pair.partition("=")
        if not equals or not label:
            console.print(f"[red]{pair!r} is not LABEL=NAME (S1=Ann)[/red]")
            return EXIT_USAGE
        names[label] = name or None
    job = client.rename_speakers(args.id, names)
    speakers = job["speakers"]
    for label in speakers["labels"]:
        print(f"{label}\t{speakers['names'].get(label, '')}")
    return EXIT_OK


def _share(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    if args.revoke:
        client.revoke_share_link(args.id, args.revoke)
        console.print(f"revoked {args.revoke}: its URLs now answer 404 (purge any CDN in front)")
        return EXIT_OK
    links = client.share_links(args.id) if args.list else [client.share(args.id)]
    for link in links:
        console.print(f"link {link['id']} ({link['created_at']})")
        print(link["podcast_transcript"])
    return EXIT_OK


def _transcribe(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    job = client.submit(args.url, language=args.language, callback_url=args.callback_url)
    console.print(f"job {job['id']}: {job['status']}")
    if not args.wait:
        print(job["id"])
        return EXIT_OK
    job = wait_with_progress(client, job["id"], timeout=args.timeout, console=console)
    if job["status"] == "failed":
        error = job.get("error") or {}
        console.print(f"[red]failed[/red]: {error.get('code')}: {error.get('message')}")
        return EXIT_JOB_FAILED
    _emit(client.transcript(job["id"], args.format), args.output, console)
    return EXIT_OK


_Command = Callable[[argparse.Namespace, PodscribeClient, Console], int]
_COMMANDS: dict[str, _Command] = {
    "transcribe": _transcribe,
    "status": _status,
    "get": _get,
    "list": _list,
    "delete": _delete,
    "webhook-secret": _webhook_secret,
    "search": _search,
    "speakers": _speakers,
    "share": _share,
}


def _run(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    return _COMMANDS[args.command](args, client, console)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        settings = load_settings()
    except SettingsError as error:
        console.print(f"[red]{error}[/red]")
        return EXIT_USAGE
    if settings.api_key is None:
        console.print("[red]PODSCRIBE_API_KEY is not set[/red]")
        return EXIT_USAGE
    with PodscribeClient(settings.api_url, settings.api_key.get_secret_value()) as client:
        try:
            return _run(args, client, console)
        except ApiError as error:
            console.print(f"[red]{error}[/red]")
            return EXIT_REFUSED if 400 <= error.status < 500 else EXIT_UNAVAILABLE
        except WaitTimeoutError as error:
            console.print(f"[red]{error}[/red]")
            return EXIT_TIMEOUT


if __name__ == "__main__":
    raise SystemExit(main())
