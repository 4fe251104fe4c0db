#!/bin/sh
# Wait until every host:port in WAIT_FOR accepts a TCP connection: the initContainer that
# holds a pod back until the servers it needs are reachable from it.
#
# One check is not enough: a new pod's NetworkPolicy rules are programmed a moment after it
# starts (the "sync window"), and until then its packets are dropped, so the first connects
# can fail even though the server is up. Each connect has a short timeout (a dropped SYN
# costs seconds, not minutes), pauses grow from 1 s to 10 s, and the whole wait is bounded by
# WAIT_SECONDS; then it exits 1 naming what never answered.
set -u

: "${WAIT_FOR:?WAIT_FOR is required (host:port, space-separated)}"
budget="${WAIT_SECONDS:-120}"

# One connect per target; exit 0 if all answered, else 1 (the first that did not is named).
probe='
import socket
import sys

for target in sys.argv[1:]:
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        print(f"{target}: {error}", file=sys.stderr)
        sys.exit(1)
'

start="$(date +%s)"
pause=1
while :; do
    # shellcheck disable=SC2086 # WAIT_FOR is a list of words
    if python -c "$probe" $WAIT_FOR; then
        echo "wait-for: ${WAIT_FOR} reachable after $(($(date +%s) - start))s"
        exit 0
    fi
    waited=$(($(date +%s) - start))
    if [ "$waited" -ge "$budget" ]; then
        echo "wait-for: gave up after ${waited}s waiting for ${WAIT_FOR}" >&2
        exit 1
    fi
    sleep "$pause"
    if [ "$pause" -lt 10 ]; then
        pause=$((pause * 2))
    fi
done
