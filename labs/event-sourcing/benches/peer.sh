#!/bin/sh
# The benchmark's peer: Python's `eventsourcing` 9.5.x with its SQLite recorder, installed
# into a virtualenv under target/ on first use, run on the same workload as the lab's store.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../../target/bench-venv-eventsourcing"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet 'eventsourcing>=9.5,<9.6' >&2
fi
exec "$venv/bin/python" "$here/peer.py"
