#!/bin/bash
# CTest fixture k8s_server (setup): starts tests/k8s-test-server on 127.0.0.1 with TLS and waits
# until it answers. Everything the tests need lands in STATE_DIR: kubeconfig (admin token),
# kubeconfig-readonly (a user whose writes get 403), kubeconfig-cert (client certificate), url,
# pid, and the node's rootfs image `localhost/kbatch-test/busybox:1`.
#   start-server.sh STATE_DIR KBATCH_EXE [RUNTIME]   (RUNTIME: kbatch (default) or host)
set -euo pipefail
state=${1:?usage: start-server.sh STATE_DIR KBATCH_EXE [RUNTIME]}
kbatch=${2:?usage: start-server.sh STATE_DIR KBATCH_EXE [RUNTIME]}
runtime=${3:-kbatch}
here=$(cd "$(dirname "$0")" && pwd)
server=$here/../../k8s-test-server/k8s_test_server.py

"$here/stop-server.sh" "$state" || true
rm -rf "$state"
mkdir -p "$state/claims/home" "$state/claims/scratch"
chmod 755 "$state" "$state/claims"
chmod 1777 "$state/claims/home" "$state/claims/scratch"
"$here/make-test-rootfs.sh" "$state/rootfs"

# Node names differ from the batch host name on purpose (FQDN vs short name): kbatch must find
# the node through its kubernetes.io/hostname label. A second node is NotReady.
host=$(hostname -s)
setsid /usr/bin/python3 "$server" --state-dir "$state" --runtime "$runtime" --kbatch "$kbatch" \
  --node "$host.kbatch-test.internal:$host" --node "down-node.kbatch-test.internal:down-node:notready" \
  --image "localhost/kbatch-test/busybox:1=$state/rootfs" \
  --claim "home=$state/claims/home" --claim "scratch=$state/claims/scratch" \
  --bookmark-interval 1 >"$state/server.log" 2>&1 </dev/null &
for _ in $(seq 1 100); do
  if [ -s "$state/url" ] && [ -s "$state/pid" ]; then
    url=$(cat "$state/url")
    if curl -sf --cacert "$state/ca.crt" "$url/readyz" >/dev/null; then
      echo "k8s test server at $url (pid $(cat "$state/pid"))"
      exit 0
    fi
  fi
  sleep 0.1
done
echo "start-server: the k8s test server did not come up; its log:" >&2
cat "$state/server.log" >&2 || true
exit 1
