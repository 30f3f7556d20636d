#!/bin/bash
# The test server ends a watch when its client has gone, as a real API server does: a watch whose
# client left without waiting for an event (kubectl's, or any client that stops at the event it
# wanted) must not stay behind as a thread that wakes at every change. Opens watches without
# bookmarks (so nothing is ever written to them), drops them, and checks that the server's thread
# count is back where it was within 4 s (a watch checks its client at least every 0.25 s).
#   watch_gone_test.sh STATE_DIR
set -uo pipefail
state=${1:?usage: watch_gone_test.sh STATE_DIR}
pid=$(cat "$state/pid")
url=$(cat "$state/url")
token=$(cat "$state/token")
threads() { ls "/proc/$pid/task" | wc -l; }

before=$(threads)
watchers=()
for _ in 1 2 3 4 5; do
  curl -sS -N --cacert "$state/ca.crt" -H "Authorization: Bearer $token" \
    "$url/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dnobody-here" \
    >/dev/null 2>&1 &
  watchers+=($!)
done
sleep 1
during=$(threads)
[ "$during" -ge $((before + 5)) ] ||
  { echo "FAIL: 5 open watches should hold 5 server threads ($before before, $during now)" >&2; exit 1; }
kill "${watchers[@]}" 2>/dev/null
wait "${watchers[@]}" 2>/dev/null
for _ in $(seq 1 40); do
  [ "$(threads)" -le "$before" ] && { echo "watch_gone_test: the watches of gone clients ended"; exit 0; }
  sleep 0.1
done
echo "FAIL: watches of clients that have gone still hold server threads ($before before, $(threads) after)" >&2
exit 1
