#!/usr/bin/env bash
# Raspberry Pi builds: cross-compiles picochat for aarch64 (64-bit Raspberry Pi OS)
# and armv7 (32-bit) with the linkers .cargo/config.toml names, using Rust 1.85
# (our rust-version), then runs each ARM binary under qemu-user: the page,
# /healthz, chat through the load generator with nothing lost, history kept
# in --data-dir across a SIGTERM restart, and exit status 0 on SIGTERM.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
source "$here/../pi-toolchain.sh"
LOAD_BIN="$(dirname "$PICOCHAT_BIN")/picochat-load"
work="$(mktemp -d)"
trap 'stop_picochat; rm -rf "$work"' EXIT

last_id() {
  curl -s "http://$PICO_ADDR/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_message_id"])'
}

pi_toolchain
for target in "${PI_TARGETS[@]}"; do
  bin=$(pi_build "$target")
  case "$target" in
    aarch64-*) want="ARM aarch64" ;;
    armv7-*) want="ARM, EABI5" ;;
  esac
  file -b "$bin" | grep -q "$want" || { echo "$target: not an $want binary: $(file -b "$bin")" >&2; exit 1; }
  size=$(stat -c %s "$bin")
  # The footprint goal with TLS (the default build): 2 MiB stripped (README, Footprint).
  [ "$size" -le $((2048 * 1024)) ] || { echo "$target: binary is $size bytes, over 2 MiB" >&2; exit 1; }

  # lib.sh starts $PICOCHAT_BIN; here that is qemu-user running the ARM binary.
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$(pi_qemu "$target")" "$bin" > "$work/run-$target"
  chmod +x "$work/run-$target"
  PICOCHAT_BIN="$work/run-$target"
  data="$work/data-$target"
  start_picochat "$work/$target.log" --data-dir "$data"
  page=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://$PICO_ADDR/")
  [ "${page%% *}" = 200 ] && [ "${page##* }" -gt 1000 ] || { echo "$target: GET / gave $page" >&2; exit 1; }
  report=$("$LOAD_BIN" --url "ws://$PICO_ADDR/ws" --clients 20 --senders 4 --rate 40 \
    --duration 3s --quiet --json)
  python3 - "$target" "$report" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
assert r["lost"] == 0 and r["sent"] > 0 and r["received"] == r["expected"] == r["sent"] * 20, r
print(f"{sys.argv[1]}: {r['sent']} messages to 20 clients, {r['received']} deliveries, 0 lost")
PY
  before=$(last_id)
  kill -TERM "$PICO_PID"
  status=0
  wait "$PICO_PID" || status=$?
  PICO_PID=
  [ "$status" = 0 ] || { echo "$target: exit status $status after SIGTERM" >&2; cat "$work/$target.log" >&2; exit 1; }

  start_picochat "$work/$target-2.log" --data-dir "$data"
  after=$(last_id)
  stop_picochat
  [ "$before" -gt 0 ] && [ "$after" = "$before" ] \
    || { echo "$target: last message id $before before the restart, $after after" >&2; exit 1; }
  echo "$target: $(file -b "$bin" | cut -d, -f1-2), $size bytes; page, healthz, chat, SIGTERM and restart with history ($after messages): ok"
done
