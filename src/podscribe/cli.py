"""``podscribe``: transcribe Apple Podcasts episodes from the command line.

    podscribe transcribe <apple url> [--wait] [--format srt] [-o file]
    podscribe status <id>
    podscribe get <id> [--format vtt] [-o file]

Talks to any deployment: ``PODSCRIBE_API_URL`` and ``PODSCRIBE_API_KEY``. A ``429`` is waited
out as its ``Retry-After`` asks (bounded; see :class:`~podscribe.client.PodscribeClient`), so
``--wait`` polling shares a key with other clients without failing.

Exit codes, for scripts: 0 done, 1 the job failed, 2 usage or configuration error,
3 the request was refused (4xx), 4 the service could not be reached or failed (5xx),
5 ``--wait`` ran out of time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from podscribe.client import ApiError, PodscribeClient, WaitTimeoutError
from podscribe.errors import SettingsError
from podscribe.settings import load_settings

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = range(6)
FORMATS = ("txt", "srt", "vtt", "json")


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
    return parser


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


def _run(args: argparse.Namespace, client: PodscribeClient, console: Console) -> int:
    if args.command == "status":
        print(json.dumps(client.get(args.id), indent=2))
        return EXIT_OK
    if args.command == "get":
        _emit(client.transcript(args.id, args.format), args.output, console)
        return EXIT_OK
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
