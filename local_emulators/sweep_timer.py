"""The local profile's Cloud Scheduler: every interval, a Pub/Sub push request to the sweep.

In GCP, Cloud Scheduler publishes to the sweep topic and Eventarc delivers a CloudEvent; here
the same push body is posted straight to the sweep function, which functions-framework turns
into the same ``messagePublished`` CloudEvent.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import urllib.request
from datetime import UTC, datetime


def push_body(subscription: str) -> bytes:
    """A Pub/Sub push request with an empty JSON message, as Cloud Scheduler would publish."""
    now = datetime.now(UTC)
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(b"{}").decode(),
                "messageId": str(int(now.timestamp() * 1000)),
                "publishTime": now.isoformat().replace("+00:00", "Z"),
                "attributes": {"source": "local-sweep-timer"},
            },
            "subscription": subscription,
        }
    ).encode()


def trigger(url: str, subscription: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback URL given by `up`
        url,
        data=push_body(subscription),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        status: int = response.status
        return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulators.sweep_timer")
    parser.add_argument("--url", required=True)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--subscription", default="projects/local/subscriptions/podscribe-sweep")
    args = parser.parse_args(argv)
    while True:
        time.sleep(args.interval)
        try:
            print(f"sweep -> {trigger(args.url, args.subscription)}", flush=True)
        except OSError as error:
            print(f"sweep failed: {error}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
