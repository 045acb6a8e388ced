#!/usr/bin/env bash
# Reverse-proxy test for contrib/Caddyfile: Debian's Caddy on loopback, running
# that site block with only the site address (an IP, so Caddy issues its own
# certificate instead of asking Let's Encrypt) and the upstream port
# substituted, in front of a real picochat with --trust-proxy on. The same
# client-side checks as the nginx test (tests/ops/proxy_check.py) and the same
# X-Forwarded-For log check.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
repo="$(cd "$here/../.." && pwd)"
if ! command -v caddy >/dev/null 2>&1; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy >/dev/null
fi
work="$(mktemp -d)"
caddy_pid=
cleanup() {
  [ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null && wait "$caddy_pid" 2>/dev/null
  stop_picochat
  rm -rf "$work"
}
trap cleanup EXIT

start_picochat "$work/picochat.log" --trust-proxy on --log-level info
tls_port=$(free_port)
plain_port=$(free_port)

# Global options only move Caddy off ports 80/443/2019 and keep its local CA
# out of the system trust store; the site block is contrib/Caddyfile's.
cat > "$work/Caddyfile" <<CONF
{
	admin off
	skip_install_trust
	http_port $plain_port
	https_port $tls_port
	storage file_system $work/caddy-data
}
CONF
sed -e "s#^chat.example.org {#127.0.0.1 {#" \
    -e "s#reverse_proxy 127.0.0.1:8000#reverse_proxy $PICO_ADDR#" \
    "$repo/contrib/Caddyfile" >> "$work/Caddyfile"
grep -q "reverse_proxy $PICO_ADDR" "$work/Caddyfile" && grep -q "^127.0.0.1 {" "$work/Caddyfile" \
  || { echo "caddy: contrib/Caddyfile no longer has the expected site block" >&2; exit 1; }
HOME="$work" XDG_CONFIG_HOME="$work" XDG_DATA_HOME="$work" \
  caddy run --adapter caddyfile --config "$work/Caddyfile" > "$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 1 100); do
  curl -sk -o /dev/null "https://127.0.0.1:$tls_port/healthz" && break
  kill -0 "$caddy_pid" 2>/dev/null || { cat "$work/caddy.log" >&2; exit 1; }
  sleep 0.1
done

python3 "$here/proxy_check.py" caddy "$tls_port" "$plain_port" \
  || { tail -n 20 "$work/caddy.log" >&2; exit 1; }
check_forwarded_for "$work/picochat.log" caddy
