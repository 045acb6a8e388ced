#!/usr/bin/env bash
# Reverse-proxy test: Debian's nginx on loopback, running contrib/nginx/chat.example.org.conf
# (only ports, certificate paths and the upstream address substituted), in front of a
# real picochat with --trust-proxy on. Checks through the proxy: the page loads over
# TLS with keep-alive, chat works over the WebSocket upgrade, X-Forwarded-For shows
# in picochat's log (and a client-supplied one is not trusted), the origin check
# still accepts the proxied origin and refuses a foreign one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  stop_picochat
  rm -rf "$work"
}
trap cleanup EXIT

start_picochat "$work/picochat.log" --trust-proxy on --log-level info
upstream="$PICO_ADDR"
tls_port=$(free_port)
plain_port=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1

sed -e "s#server 127.0.0.1:8000;#server $upstream;#" \
    -e "s#listen 443 ssl;#listen 127.0.0.1:$tls_port ssl;#" \
    -e "s#listen 80;#listen 127.0.0.1:$plain_port;#" \
    -e "/listen \[::\]/d" \
    -e "s#/etc/letsencrypt/live/chat.example.org/fullchain.pem#$work/cert.pem#" \
    -e "s#/etc/letsencrypt/live/chat.example.org/privkey.pem#$work/key.pem#" \
    "$repo/contrib/nginx/chat.example.org.conf" > "$work/site.conf"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    include $work/site.conf;
}
CONF
mkdir -p "$work/tmp"
"$NGINX" -t -p "$work" -c "$work/nginx.conf" -g "user root;" 2>&1 | tail -n 1
"$NGINX" -p "$work" -c "$work/nginx.conf" -g "user root;"
for _ in $(seq 1 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done

python3 "$here/proxy_check.py" nginx "$tls_port" "$plain_port"

check_forwarded_for "$work/picochat.log" nginx
