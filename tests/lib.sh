# Shared helpers for the shell-driven checks in tests/conformance and tests/ops.
# start_picochat LOGFILE ARGS...: starts $PICOCHAT_BIN on 127.0.0.1:0, sets PICO_PID and PICO_ADDR.
PICOCHAT_BIN="${PICOCHAT_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/picochat}"

start_picochat() {
  local log="$1"; shift
  "$PICOCHAT_BIN" --listen 127.0.0.1:0 "$@" 2>"$log" &
  PICO_PID=$!
  for _ in $(seq 1 100); do
    PICO_ADDR=$(sed -n 's/.* listening on \([0-9.:]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$PICO_ADDR" ] && return 0
    kill -0 "$PICO_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "picochat did not start:" >&2
  cat "$log" >&2
  return 1
}

# free_port: a loopback TCP port nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_picochat() {
  [ -n "${PICO_PID:-}" ] && kill "$PICO_PID" 2>/dev/null && wait "$PICO_PID" 2>/dev/null
  PICO_PID=
}

# check_forwarded_for LOGFILE NAME: after tests/ops/proxy_check.py ran through a
# proxy in front of a picochat started with --trust-proxy on, its log names the
# client address the proxy forwarded, never the one the client forged.
check_forwarded_for() {
  local log="$1" name="$2"
  sleep 0.3
  if ! grep -q "127.0.0.1 (via 127.0.0.1:" "$log"; then
    echo "$name: X-Forwarded-For not used in the log:" >&2; cat "$log" >&2; return 1
  fi
  if grep -q "203.0.113.7 (via" "$log"; then
    echo "$name: a client-supplied X-Forwarded-For was trusted:" >&2; cat "$log" >&2; return 1
  fi
  echo "$name: X-Forwarded-For from the proxy logged, client-supplied one ignored: ok"
}
