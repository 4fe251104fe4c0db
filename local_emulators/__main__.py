"""``python -m local_emulators up | down | status | logs | demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from local_emulators import profile
from local_emulators.processes import StartupError
from local_emulators.stacks import STACKS
from local_emulators.state import kept_secret
from podscribe.api.auth import key_fingerprint
from podscribe.jobs.webhooks import secret_for_key
from podscribe.log import mask_credentials
from podscribe.settings import Settings


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _up(settings: Settings, args: argparse.Namespace) -> int:
    state = profile.up(settings, stack=args.stack, with_fixtures=args.with_fixtures)
    print(f"stack:      {state.stack}")
    print(f"submit URL: {state.submit_url}")
    print(f"API key:    {state.api_key}")
    if settings.webhook_secret is None and settings.webhook_secret_version is None:
        print(f"webhooks are signed with the secret in {profile.webhook_secret_path(settings)}")
    if settings.webhook_secret_version is None:
        # The key's own Standard Webhooks secret, derived from the master the parts sign with.
        master = (
            settings.webhook_secret.get_secret_value()
            if settings.webhook_secret is not None
            else kept_secret(profile.webhook_secret_path(settings))
        )
        secret = secret_for_key(master, key_fingerprint(state.api_key))
        print(f"webhook secret of this key: {secret}")
    return 0


def _down(settings: Settings, args: argparse.Namespace) -> int:
    profile.down(settings)
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    return 0 if profile.status(settings) else 1


def _logs(settings: Settings, args: argparse.Namespace) -> int:
    state = profile.ProfileState.load(profile.state_path(settings))
    if state is None:
        print("not running")
        return 1
    for record in state.processes:
        if args.part in (None, record.name):
            print(f"==> {record.name} ({record.log}) <==")
            print(_tail(Path(record.log), args.lines))
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from local_emulators.demo import run_demo

    return run_demo(settings, stack=args.stack, keep_running=not args.down)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "up": _up,
    "down": _down,
    "status": _status,
    "logs": _logs,
    "demo": _demo,
}


_STACK_HELP = (
    "gcp (default): the Pub/Sub emulator pushes to dispatch, fake-gcs-server stores; "
    "selfhosted: a Redis stream consumed by dispatch, an S3 API stores (moto's S3 server, "
    "in memory: MinIO's server cannot be installed from a package registry)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulators", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local profile in the background")
    up_parser.add_argument(
        "--with-fixtures",
        action="store_true",
        help="also serve the demo's loopback Apple lookup, RSS feed and audio",
    )
    up_parser.add_argument("--stack", choices=STACKS, default="gcp", help=_STACK_HELP)
    commands.add_parser("down", help="stop everything `up` started")
    commands.add_parser("status", help="what runs")
    logs = commands.add_parser("logs", help="the last lines of each part's log")
    logs.add_argument(
        "part", nargs="?", help="only this part (e.g. dispatch: the stream consumer on selfhosted)"
    )
    logs.add_argument("-n", "--lines", type=int, default=40)
    demo = commands.add_parser("demo", help="the whole pipeline end to end, transcript printed")
    demo.add_argument("--down", action="store_true", help="stop the stack afterwards")
    demo.add_argument("--stack", choices=STACKS, default="gcp", help=_STACK_HELP)
    args = parser.parse_args(argv)

    from podscribe.errors import PodscribeError
    from podscribe.settings import load_settings

    try:
        settings = load_settings()
        return COMMANDS[args.command](settings, args)
    except (StartupError, PodscribeError) as error:
        print(f"error: {mask_credentials(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
