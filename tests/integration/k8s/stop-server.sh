#!/bin/bash
# CTest fixture k8s_server (cleanup): stops the server started by start-server.sh (by its pid
# file only) and fails if it left a container process running.
set -euo pipefail
state=${1:?usage: stop-server.sh STATE_DIR}
[ -s "$state/pid" ] || exit 0
pid=$(cat "$state/pid")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$state/pid"
