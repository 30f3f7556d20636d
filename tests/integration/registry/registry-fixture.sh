#!/bin/bash
# The `registry` CTest fixture: Debian's docker-registry (the CNCF distribution registry) on
# 127.0.0.1 with a free port, a temporary storage directory and a config file written here.
#
# usage: registry-fixture.sh start STATE_DIR [OPTIONS]  -> writes STATE_DIR/address ("127.0.0.1:PORT")
#        registry-fixture.sh stop STATE_DIR
# Options, each what a site registry would ask for:
#   --htpasswd FILE          HTTP basic auth from FILE's users (bcrypt, as `htpasswd -B` writes)
#   --tls CERT KEY           serve HTTPS with this certificate instead of plain HTTP
#   --client-ca PEM          and require a client certificate signed by PEM (mutual TLS)
#   --token REALM SERVICE ISSUER BUNDLE
#                            bearer tokens from the token server at REALM, signed by a key whose
#                            certificate is in BUNDLE (docker/distribution's token auth)
set -euo pipefail
usage="usage: registry-fixture.sh start|stop STATE_DIR [--htpasswd FILE] [--tls CERT KEY] [--client-ca PEM] [--token REALM SERVICE ISSUER BUNDLE]"
action=${1:?$usage}
state=${2:?$usage}
shift 2
htpasswd='' tls_cert='' tls_key='' client_ca='' token_realm='' token_service='' token_issuer='' token_bundle=''
while [ $# -gt 0 ]; do
  case $1 in
    --htpasswd) htpasswd=$(readlink -f "$2"); shift 2 ;;
    --tls) tls_cert=$(readlink -f "$2"); tls_key=$(readlink -f "$3"); shift 3 ;;
    --client-ca) client_ca=$(readlink -f "$2"); shift 2 ;;
    --token) token_realm=$2 token_service=$3 token_issuer=$4 token_bundle=$(readlink -f "$5"); shift 5 ;;
    *) echo "registry fixture: unknown option '$1'; $usage" >&2; exit 2 ;;
  esac
done

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
    if [ -n "$tls_cert" ]; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$tls_cert" "$tls_key" >> "$state/config.yml"
      [ -z "$client_ca" ] || printf '    clientcas:\n      - %s\n' "$client_ca" >> "$state/config.yml"
    fi
    if [ -n "$htpasswd" ]; then
      cat >> "$state/config.yml" <<CONFIG
auth:
  htpasswd:
    realm: kbatch-test-registry
    path: $htpasswd
CONFIG
    elif [ -n "$token_realm" ]; then
      cat >> "$state/config.yml" <<CONFIG
auth:
  token:
    realm: $token_realm
    service: $token_service
    issuer: $token_issuer
    rootcertbundle: $token_bundle
CONFIG
    fi
    scheme=http
    [ -z "$tls_cert" ] || scheme=https
    setsid docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 < /dev/null &
    echo $! > "$state/pid"
    for _ in $(seq 100); do
      # Only readiness is checked here (-k: the tests check certificates themselves); a registry
      # that wants a client certificate ends the handshake, so an open port is all it shows.
      if [ -n "$client_ca" ]; then
        code=000
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && code=ready
      else
        code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$port/v2/" 2>/dev/null || true)
      fi
      if [ "$code" = 200 ] || [ "$code" = ready ] ||
         { [ -n "$htpasswd$token_realm" ] && [ "$code" = 401 ]; }; then
        echo "127.0.0.1:$port" > "$state/address"
        echo "registry fixture: docker-registry listening on $scheme://127.0.0.1:$port"
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
    echo "$usage" >&2
    exit 2
    ;;
esac
