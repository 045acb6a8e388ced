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

stop_picochat() {
  [ -n "${PICO_PID:-}" ] && kill "$PICO_PID" 2>/dev/null && wait "$PICO_PID" 2>/dev/null
  PICO_PID=
}
