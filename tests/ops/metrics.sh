#!/usr/bin/env bash
# Operations endpoints checked with real tools: /metrics parsed by the Prometheus
# Python client's own text parser (valid format, not just plausible), /healthz
# as JSON; --admin-listen moves both off the chat port; --ops-endpoints off
# removes them; --log-format json writes one JSON object per line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
work="$(mktemp -d)"
trap 'stop_picochat; rm -rf "$work"' EXIT

start_picochat "$work/a.log" --log-format json
python3 - "$PICO_ADDR" <<'PY'
import asyncio, json, sys, urllib.request
import websockets
from prometheus_client.parser import text_string_to_metric_families

addr = sys.argv[1]
async def traffic():
    async with websockets.connect(f"ws://{addr}/ws") as ws:
        await ws.send(json.dumps({"type": "join", "username": "metrics"}))
        await ws.recv()
        for i in range(3):
            await ws.send(json.dumps({"message": f"m{i}"}))
            await ws.recv()
        await ws.send("not json")
        await ws.recv()
asyncio.run(traffic())

r = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
def value(name, **labels):
    for s in families[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(name)
assert value("picochat_messages_received") == 3, families["picochat_messages_received"]
assert value("picochat_connections") >= 2
assert value("picochat_disconnects", reason="client_closed") >= 1
assert value("picochat_history_messages") == 3
assert value("picochat_open_fds") > 0 and value("picochat_max_fds") >= value("picochat_open_fds")
assert value("picochat_event_loop_iterations") > 0
for needed in ("picochat_connections_open", "picochat_websocket_clients", "picochat_bytes_written",
               "picochat_messages_broadcast", "picochat_frames_queued", "picochat_uptime_seconds"):
    assert needed in families, needed
print("metrics: %d families parsed by prometheus_client" % len(families))

h = json.load(urllib.request.urlopen(f"http://{addr}/healthz", timeout=5))
assert h["status"] == "ok" and h["last_message_id"] == 3 and "uptime_seconds" in h and "clients" in h, h
print("healthz:", h)
PY
stop_picochat
python3 - "$work/a.log" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert all({"ts", "level", "msg"} <= l.keys() for l in lines), lines
assert any("websocket open" in l["msg"] for l in lines)
print("json logs: %d lines, each a JSON object" % len(lines))
PY

admin_port=$(free_port)
start_picochat "$work/b.log" --admin-listen "127.0.0.1:$admin_port"
main_code=$(curl -s -o /dev/null -w '%{http_code}' "http://$PICO_ADDR/metrics")
admin_code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/metrics")
page_on_admin=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/")
[ "$main_code" = 404 ] && [ "$admin_code" = 200 ] && [ "$page_on_admin" = 404 ] \
  || { echo "admin listener: main /metrics $main_code, admin /metrics $admin_code, admin / $page_on_admin" >&2; exit 1; }
stop_picochat
start_picochat "$work/c.log" --ops-endpoints off
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$PICO_ADDR/healthz")" = 404 ] || { echo "ops endpoints not off" >&2; exit 1; }
echo "ops: --admin-listen and --ops-endpoints off: ok"
