#!/usr/bin/env bash
# The README's "Scale out on Redis" recipe, run as written: its two commands
# (Debian's redis-server, then four picochat processes with --redis and
# --reuse-port) on this machine, then checked: four processes share one port,
# the kernel spreads 200 clients over them, a load run across 5 rooms loses
# nothing, /metrics parses (Prometheus' own parser) with picochat_redis_up 1.
# The listen address comes from PICOCHAT_LISTEN (a free port), so the command
# text stays the README's. Where apt does not start services (a container
# without systemd), this script starts Debian's redis-server on 127.0.0.1:6379
# itself, as systemd would, and stops it after. Also `systemd-analyze verify`
# of contrib/picochat@.service.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
root="$(cd "$here/../.." && pwd)"
LOAD_BIN="$(dirname "$PICOCHAT_BIN")/picochat-load"
work="$(mktemp -d)"
pids=()
redis_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$redis_pid" ] && { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; } || true
  rm -rf "$work"
}
trap cleanup EXIT

# The recipe: the fenced block after the marker in the README.
awk '/<!-- scale-out recipe/ {found=1; next} found && /^```sh/ {inblock=1; next} inblock && /^```/ {exit} inblock {print}' \
  "$root/README.md" > "$work/recipe.sh"
[ "$(wc -l < "$work/recipe.sh")" -eq 2 ] || { echo "README recipe: expected two commands" >&2; cat "$work/recipe.sh" >&2; exit 1; }
cat "$work/recipe.sh"
install_cmd="$(sed -n 1p "$work/recipe.sh")"
start_cmd="$(sed -n 2p "$work/recipe.sh")"
# The operations guide shows the same two commands.
for cmd in "$install_cmd" "$start_cmd"; do
  grep -qxF "$cmd" "$root/docs/operations.md" || { echo "docs/operations.md lacks the recipe line: $cmd" >&2; exit 1; }
done

# 1. Start Redis (as root here: no sudo needed).
if ! command -v sudo >/dev/null 2>&1; then sudo() { "$@"; }; fi
eval "$install_cmd" >/dev/null 2>&1
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "(no service manager started Redis: starting Debian's redis-server on 127.0.0.1:6379)"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly yes --dir "$work" --logfile "$work/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.05; done
fi

# 2. Start four picochat, as written, with the binary under test and a free port.
port="$(free_port)"
export PICOCHAT_LISTEN="127.0.0.1:$port" PICOCHAT_LOG_LEVEL=info
# Each `picochat ... &` of the recipe runs in its own job: exec there, so the
# job's pid is picochat's and each writes its own log.
picochat() { exec "$PICOCHAT_BIN" "$@" 2>>"$work/node-$BASHPID.log"; }
eval "$start_cmd"
pids=()
for p in $(jobs -p); do [ "$p" = "$redis_pid" ] || pids+=("$p"); done
[ "${#pids[@]}" -eq 4 ] || { echo "expected 4 processes, got ${#pids[@]}" >&2; exit 1; }
for _ in $(seq 1 100); do
  [ "$(cat "$work"/node-*.log 2>/dev/null | grep -c 'redis: connected')" -ge 4 ] && break
  sleep 0.05
done
cat "$work"/node-*.log > "$work/nodes.log"
[ "$(grep -c "listening on 127.0.0.1:$port" "$work/nodes.log")" -eq 4 ] \
  || { echo "not all four listen on :$port" >&2; cat "$work/nodes.log" >&2; exit 1; }
[ "$(grep -c 'redis: connected' "$work/nodes.log")" -eq 4 ] \
  || { echo "not all four reached Redis" >&2; cat "$work/nodes.log" >&2; exit 1; }

"$LOAD_BIN" --url "ws://127.0.0.1:$port/ws" --clients 200 --senders 10 --rate 100 \
  --duration 3s --rooms 5 --json --quiet > "$work/load.json"
cat "$work"/node-*.log > "$work/nodes.log"
python3 - "$work/load.json" "$work/nodes.log" "127.0.0.1:$port" <<'PY'
import json, re, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
r = json.load(open(sys.argv[1]))
assert r["failed"] == 0 and r["dropped"] == 0, r
assert r["sent"] > 200 and r["lost"] == 0 and r["expected"] == r["received"], r
log = open(sys.argv[2]).read()
opens = len(re.findall(r"websocket open \(chat\)", log))
assert opens >= 200, opens
body = urllib.request.urlopen(f"http://{sys.argv[3]}/metrics", timeout=5).read().decode()
samples = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}
assert samples["picochat_redis_up"] == 1, samples.get("picochat_redis_up")
assert samples["picochat_redis_reconnects_total"] >= 1
print(f"scale-out recipe: 4 processes on one port, {r['received']} deliveries across 5 rooms, "
      f"0 lost, /metrics parses with picochat_redis_up 1: ok")
PY
# Connections went to every process (the kernel's SO_REUSEPORT hash; 200 over 4).
for p in "${pids[@]}"; do
  n="$(grep -c 'websocket open (chat)' "$work/node-$p.log" || true)"
  echo "  process $p: $n WebSockets"
  [ "$n" -gt 0 ] || { echo "process $p got no connection" >&2; exit 1; }
done

# The systemd template, with this binary in place of /usr/bin/picochat.
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$work/units"
  sed "s#/usr/bin/picochat#$PICOCHAT_BIN#" "$root/contrib/picochat@.service" > "$work/units/picochat@.service"
  cp "$work/units/picochat@.service" "$work/units/picochat@1.service"
  out="$(cd "$work/units" && systemd-analyze verify ./picochat@1.service 2>&1 || true)"
  if [ -n "$out" ]; then echo "systemd-analyze verify picochat@.service:" >&2; echo "$out" >&2; exit 1; fi
  echo "contrib/picochat@.service: systemd-analyze verify clean"
fi
