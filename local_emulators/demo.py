"""The demo: the whole pipeline on this machine, from an Apple Podcasts URL to a transcript.

It brings the local profile up with a loopback stand-in for Apple's lookup API, a show's RSS
feed and a CDN serving real speech (JFK's 1961 inaugural address, public domain), submits a
real Apple-form episode URL over HTTP like any caller, shows the job's progress, and prints
the transcript.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from local_emulators.fixtures import EPISODE
from local_emulators.profile import down, up
from local_emulators.stacks import Stack
from podscribe.cli import wait_with_progress
from podscribe.client import ApiError, PodscribeClient, WaitTimeoutError
from podscribe.settings import Settings


def run_demo(
    settings: Settings, *, stack: Stack = "gcp", keep_running: bool = True, timeout: float = 600
) -> int:
    """Returns the exit code: 0 when the transcript was printed."""
    console = Console(stderr=True, soft_wrap=True)
    console.print(
        f"[bold]podscribe demo[/bold]: starting the local profile on --stack {stack} "
        "(first run: ~1 min)"
    )
    state = up(settings, stack=stack, with_fixtures=True, out=sys.stderr)
    try:
        return _transcribe(state.submit_url, state.api_key, console, timeout)
    except (ApiError, WaitTimeoutError) as error:
        console.print(f"[red]the demo failed[/red]: {error}")
        console.print("logs: .venv/bin/python -m local_emulators logs")
        return 1
    finally:
        if not keep_running:
            down(settings, out=sys.stderr)
        console.print(
            "\nThe stack is still up. Try it yourself:\n"
            f"  export PODSCRIBE_API_URL={state.submit_url} PODSCRIBE_API_KEY={state.api_key}\n"
            f"  .venv/bin/podscribe transcribe '{EPISODE.apple_url}' --wait --format srt\n"
            "  .venv/bin/python -m local_emulators status | logs | down"
            if keep_running
            else "\nThe stack was stopped."
        )


def _transcribe(submit_url: str, api_key: str, console: Console, timeout: float) -> int:
    """Submit the demo episode like any caller, show progress, print the transcript."""
    with PodscribeClient(submit_url, api_key) as client:
        console.print(f"submitting {EPISODE.apple_url}")
        job = client.submit(EPISODE.apple_url)
        console.print(f"job {job['id']} is {job['status']}")
        job = wait_with_progress(client, job["id"], timeout=timeout, console=console)
        if job["status"] != "succeeded":
            error: dict[str, Any] = job.get("error") or {}
            console.print(f"[red]the job failed[/red]: {error.get('code')}: {error.get('message')}")
            return 1
        console.print(f"[green]succeeded[/green] ({EPISODE.show}: {EPISODE.title})\n")
        print(client.transcript(job["id"], "txt").strip())
        console.print(
            f"\nSRT and WebVTT: {submit_url}/v1/transcriptions/{job['id']}"
            "/transcript?format=srt|vtt|json"
        )
    return 0
