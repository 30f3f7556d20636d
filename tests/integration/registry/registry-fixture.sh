#!/bin/bash
# The `registry` CTest fixture: Debian's docker-registry (the CNCF distribution registry) on
# 127.0.0.1 with a free port, a temporary storage directory and a config file written here.
#
# usage: registry-fixture.sh start STATE_DIR [HTPASSWD]  -> writes STATE_DIR/address ("127.0.0.1:PORT")
#        registry-fixture.sh stop STATE_DIR
# With HTPASSWD (bcrypt entries, as `htpasswd -B` writes them) every request needs HTTP basic auth
# from those users, as a site registry would ask.
set -euo pipefail
action=${1:?usage: registry-fixture.sh start|stop STATE_DIR [HTPASSWD]}
state=${2:?usage: registry-fixture.sh start|stop STATE_DIR [HTPASSWD]}
htpasswd=${3:-}

stop_registry() {
  if [ -f "$state/pid" ]; then
    local pid
    pid=$(cat "$state/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$state/pid"
  fi
}

case $action in
  start)
    command -v docker-registry >/dev/null || { echo "registry fixture: docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
    stop_registry
    rm -rf "$state"
    mkdir -p "$state/storage"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$state/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONFIG
    if [ -n "$htpasswd" ]; then
      cat >> "$state/config.yml" <<CONFIG
auth:
  htpasswd:
    realm: kbatch-test-registry
    path: $(readlink -f "$htpasswd")
CONFIG
    fi
    setsid docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 < /dev/null &
    echo $! > "$state/pid"
    for _ in $(seq 100); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
      if [ "$code" = 200 ] || { [ -n "$htpasswd" ] && [ "$code" = 401 ]; }; then
        echo "127.0.0.1:$port" > "$state/address"
        echo "registry fixture: docker-registry listening on 127.0.0.1:$port"
        exit 0
      fi
      kill -0 "$(cat "$state/pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "registry fixture: docker-registry did not start; its log:" >&2
    cat "$state/registry.log" >&2
    stop_registry
    exit 1
    ;;
  stop)
    stop_registry
    rm -rf "$state/storage"
    ;;
  *)
    echo "usage: registry-fixture.sh start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
