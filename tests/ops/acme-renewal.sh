#!/usr/bin/env bash
# Certificate renewal end to end, offline: Debian's pebble (a test ACME CA)
# issues to Debian's certbot in webroot mode, whose challenge files picochat
# serves on --http-redirect from --acme-webroot. picochat starts before any
# certificate exists (a first install: it serves the challenge and refuses
# TLS); certbot's deploy hook (contrib/certbot-deploy-hook, as the package
# installs it, pointed at this test's directory and at SIGHUP instead of
# `systemctl reload picochat`) copies the pair where --tls-cert/--tls-key
# point, and a new TLS connection then sees the certificate's serial. Then a forced
# renewal (a second new serial), and a broken one (a key that does not match)
# that leaves the previous certificate serving. pebble-challtestsrv answers
# pebble's DNS so the test name resolves to 127.0.0.1 and nothing leaves the
# machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
need=()
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v certbot >/dev/null 2>&1 || need+=(certbot)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  stop_picochat
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "acme: $*" >&2
  for f in "$work"/picochat.log "$work"/pebble.log "$work"/certbot.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

name=chat.picochat.test
mkdir -p "$work/tls" "$work/webroot" "$work/certbot"
cd "$work"

# pebble's own HTTPS certificate (its API), from a throwaway CA made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=picochat ops test CA" 2>/dev/null
issue() { # NAME CN SAN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2 \
    -extfile "$1.ext" 2>/dev/null
}
issue pebble-api localhost "DNS:localhost,IP:127.0.0.1"

http_port=$(free_port)
acme_port=$(free_port)
mgmt_port=$(free_port)
dns_port=$(free_port)

start_picochat "$work/picochat.log" --log-level info --tls-cert "$work/tls/fullchain.pem" \
  --tls-key "$work/tls/privkey.pem" --http-redirect "127.0.0.1:$http_port" --acme-webroot "$work/webroot"
echo "$PICO_PID" > picochat.pid

# The serial a new TLS connection to picochat is shown, as openssl prints it.
served_serial() {
  openssl s_client -connect "$PICO_ADDR" -servername "$name" </dev/null 2>/dev/null \
    | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
file_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# Waits until picochat has logged N reload lines of this kind.
wait_log() { # PATTERN COUNT
  for _ in $(seq 100); do
    [ "$(grep -c "$1" picochat.log || true)" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "picochat did not log '$1' $2 time(s)"
}

grep -q "does not exist yet" picochat.log || fail "picochat did not say it waits for its first certificate"
[ -z "$(served_serial)" ] || fail "TLS answered before there was a certificate"

# DNS: every name is 127.0.0.1 (no AAAA), so pebble's http-01 check comes to
# picochat's redirect listener.
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns_port" \
  -http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$(free_port)" \
  > challtestsrv.log 2>&1 &
pids+=($!)
cat > pebble.json <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$mgmt_port",
  "certificate": "$work/pebble-api.pem", "privateKey": "$work/pebble-api.key",
  "httpPort": $http_port, "tlsPort": $(free_port), "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}
JSON
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
  pebble -config pebble.json -dnsserver "127.0.0.1:$dns_port" > pebble.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -s -k -o /dev/null "https://127.0.0.1:$acme_port/dir" && break
  sleep 0.1
done
curl -s -k -o /dev/null "https://127.0.0.1:$acme_port/dir" || fail "pebble did not start"
kill -0 "${pids[0]}" 2>/dev/null || { cat challtestsrv.log >&2; fail "pebble-challtestsrv did not start"; }

# The packaged deploy hook, with this test's directory and SIGHUP for
# `systemctl try-reload-or-restart picochat`.
cat > deploy-hook <<HOOK
#!/bin/sh
PICOCHAT_TLS_DIR="$work/tls" PICOCHAT_RELOAD="kill -HUP \$(cat "$work/picochat.pid")" \\
  exec "$here/../../contrib/certbot-deploy-hook"
HOOK
# A broken renewal: the new chain, but a key that is not its key.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
cat > bad-hook <<HOOK
#!/bin/sh
cp "\$RENEWED_LINEAGE/fullchain.pem" "$work/tls/fullchain.pem"
cp "$work/other.key" "$work/tls/privkey.pem"
kill -HUP "\$(cat "$work/picochat.pid")"
HOOK
chmod +x deploy-hook bad-hook

certbot_run() {
  certbot "$@" --server "https://127.0.0.1:$acme_port/dir" --no-verify-ssl \
    --config-dir certbot/config --work-dir certbot/work --logs-dir certbot/logs \
    --non-interactive --agree-tos -m ops@picochat.test --no-random-sleep-on-renew \
    >> certbot.log 2>&1 || fail "certbot $1 failed"
}
lineage="certbot/config/live/$name"

# 1. First issue: the challenge is served from the webroot over the redirect
#    listener, the hook copies the pair (owned as its directory is, mode 600)
#    and reloads, a new connection sees the issued serial.
certbot_run certonly --webroot -w "$work/webroot" -d "$name" --deploy-hook "$work/deploy-hook"
wait_log "SIGHUP: TLS certificate reloaded" 1
issued=$(file_serial "$lineage/cert.pem")
[ "$(stat -c %a tls/privkey.pem)" = 600 ] || fail "the hook left the key mode $(stat -c %a tls/privkey.pem)"
got=$(served_serial)
[ "$got" = "$issued" ] || fail "after the deploy hook a new connection sees serial $got, not $issued"
echo "acme: certbot issued serial $issued from pebble over --http-redirect/--acme-webroot, reloaded by SIGHUP: ok"

# 2. A forced renewal as certbot's timer runs it: no options, the webroot and
#    the deploy hook come from what certbot saved at the first issue.
certbot_run renew --force-renewal
wait_log "SIGHUP: TLS certificate reloaded" 2
renewed=$(file_serial "$lineage/cert.pem")
[ "$renewed" != "$issued" ] || fail "renewal kept the serial"
got=$(served_serial)
[ "$got" = "$renewed" ] || fail "after renewal a new connection sees serial $got, not $renewed"
echo "acme: renewed to serial $renewed, served: ok"

# 3. A broken renewal (the key does not match): logged, the old pair serves on.
certbot_run renew --force-renewal --webroot -w "$work/webroot" --deploy-hook "$work/bad-hook"
wait_log "SIGHUP: TLS certificate not reloaded, keeping the old one" 1
broken=$(file_serial "$lineage/cert.pem")
[ "$broken" != "$renewed" ] || fail "the broken renewal did not issue"
got=$(served_serial)
[ "$got" = "$renewed" ] || fail "after a broken renewal a new connection sees serial $got, not $renewed"
kill -0 "$PICO_PID" || fail "picochat exited"
echo "acme: broken renewal (key not matching) logged, serial $renewed still served: ok"
