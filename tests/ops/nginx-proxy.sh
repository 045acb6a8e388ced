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
tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
plain_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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

python3 - "$tls_port" "$plain_port" <<'PY'
import asyncio, http.client, json, ssl, sys
import websockets

tls_port, plain_port = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
origin = f"https://127.0.0.1:{tls_port}"

# Plain HTTP redirects to HTTPS.
c = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=5)
c.request("GET", "/")
r = c.getresponse()
assert r.status == 301 and r.getheader("Location", "").startswith("https://"), (r.status, r.getheaders())

# The page over TLS, twice on one keep-alive connection.
c = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=5)
for path in ("/", "/app.js"):
    c.request("GET", path, headers={"Accept-Encoding": "gzip"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status)
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
assert r.getheader("Connection", "keep-alive").lower() != "close"

async def chat():
    url = f"wss://127.0.0.1:{tls_port}/ws"
    async with websockets.connect(url, ssl=ctx, origin=origin,
                                  additional_headers={"X-Forwarded-For": "203.0.113.7"}) as a, \
               websockets.connect(url, ssl=ctx, origin=origin) as b:
        await a.send(json.dumps({"type": "join", "username": "via-proxy"}))
        w = json.loads(await a.recv())
        assert w["type"] == "welcome", w
        await b.send(json.dumps({"username": "b", "email": "b@example.org", "message": "through nginx"}))
        for ws in (a, b):
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m["type"] == "message":
                    assert m["message"] == "through nginx", m
                    break
    try:
        async with websockets.connect(url, ssl=ctx, origin="https://evil.example"):
            raise SystemExit("foreign origin was accepted through the proxy")
    except websockets.exceptions.InvalidStatus as e:
        assert e.response.status_code == 403, e

asyncio.run(chat())
print("proxy: page, keep-alive, gzip, chat over wss, origin check: ok")
PY

sleep 0.3
if ! grep -q "127.0.0.1 (via 127.0.0.1:" "$work/picochat.log"; then
  echo "X-Forwarded-For not used in the log:" >&2; cat "$work/picochat.log" >&2; exit 1
fi
if grep -q "203.0.113.7 (via" "$work/picochat.log"; then
  echo "a client-supplied X-Forwarded-For was trusted:" >&2; cat "$work/picochat.log" >&2; exit 1
fi
echo "proxy: X-Forwarded-For from the proxy logged, client-supplied one ignored: ok"
