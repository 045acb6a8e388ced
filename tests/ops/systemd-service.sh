#!/usr/bin/env bash
# contrib/picochat.service under a real systemd, installed the way the README's
# "Deploy on a Raspberry Pi" says: a fresh Debian bookworm (debootstrap) boots
# with systemd as PID 1 in a container (systemd-nspawn --boot), the binary and
# unit are copied in and `systemctl enable --now picochat` starts them. Then,
# with every hardening line of the unit in force: the page and /healthz answer,
# it runs as a dynamic user, LimitNOFILE reaches --max-connections, history
# survives a restart in StateDirectory, a SIGKILL is restarted, `systemctl stop`
# is a clean exit, chat text never reaches the journal, and
# `systemd-analyze security` rates the unit. `systemd-analyze verify` runs first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
root="$(cd "$here/../.." && pwd)"
unit="$root/contrib/picochat.service"

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work="$(mktemp -d)"
nspawn_pid=
leader=
cleanup() {
  # Killing the container's PID 1 ends every process in it, then nspawn exits.
  [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
  if [ -n "$nspawn_pid" ]; then
    kill "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "systemd: $*" >&2
  [ -n "$leader" ] && nsenter -t "$leader" -a journalctl --no-pager -n 40 >&2
  exit 1
}

# 1. The unit file itself: no unknown directives, no bad values.
sed "s#^ExecStart=/usr/local/bin/picochat#ExecStart=$PICOCHAT_BIN#" "$unit" > "$work/verify.service"
out="$(systemd-analyze verify "$work/verify.service" 2>&1 || true)"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
echo "systemd: unit verified"

# 2. A fresh Debian with systemd, kept pristine in target/ so a second run skips debootstrap.
pristine="$root/target/systemd-rootfs"
if [ ! -x "$pristine/lib/systemd/systemd" ]; then
  rm -rf "$pristine.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,libnss-systemd \
    bookworm "$pristine.tmp" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  mv "$pristine.tmp" "$pristine"
fi
cp -a "$pristine" "$work/rootfs"

# 3. Boot it: systemd is PID 1 inside; the host's network is shared, so the
# service's port is reachable from here.
systemd-nspawn -D "$work/rootfs" --boot --register=no --keep-unit --console=passive \
  --machine=picochat-systemd-test > "$work/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 100); do
  leader=$(pgrep -P "$nspawn_pid" | head -n 1 || true)
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { cat "$work/nspawn.log" >&2; fail "container did not start"; }
pi() { nsenter -t "$leader" -a "$@"; }
# Until systemd answers on its socket the state reads "offline"; then it is
# "starting" until boot is done.
state=
for _ in $(seq 1 300); do
  state=$(pi systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.2
done
case "$state" in running | degraded) ;; *) fail "container systemd is '$state' after 60 s" ;; esac
echo "systemd: container booted ($(pi systemctl --version | head -n 1), state $state)"

# 4. The README's install steps ("scp" is a copy into the container's /tmp). The
# port comes from a drop-in, as `systemctl edit picochat` would write it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pi sh -c 'cat > /tmp/picochat' < "$PICOCHAT_BIN"
pi sh -c 'cat > /tmp/picochat.service' < "$unit"
pi install -m 0755 /tmp/picochat /usr/local/bin/picochat
pi install -m 0644 /tmp/picochat.service /etc/systemd/system/picochat.service
pi mkdir -p /etc/systemd/system/picochat.service.d
printf '[Service]\nEnvironment=PICOCHAT_LISTEN=127.0.0.1:%s\n' "$port" \
  | pi sh -c 'cat > /etc/systemd/system/picochat.service.d/override.conf'
pi systemctl daemon-reload
pi systemctl enable --now picochat 2>/dev/null

wait_healthy() {
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/healthz" > "$work/health.json" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
health() { python3 -c "import json; print(json.load(open('$work/health.json'))['$1'])"; }
wait_healthy || fail "no /healthz on port $port after enable --now"
[ "$(pi systemctl is-active picochat)" = active ] || fail "service is not active"
page=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
[ "$page" = 200 ] || fail "GET / gave $page"

pid=$(pi systemctl show -p MainPID --value picochat)
uid=$(pi awk '/^Uid:/ {print $2}' "/proc/$pid/status")
user=$(pi systemctl show -p User --value picochat)
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "runs as uid $uid, not a DynamicUser uid"
pi journalctl -u picochat --no-pager | grep -q "max 19936 connections" \
  || fail "LimitNOFILE=20000 did not become --max-connections 19936"
echo "systemd: active on 127.0.0.1:$port as dynamic user ${user:-picochat} (uid $uid), 19936 connections allowed"

# 5. Chat, then a restart: the history is in /var/lib/picochat (StateDirectory=).
python3 - "$port" <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/ws") as ws:
        await ws.send(json.dumps({"type": "join", "username": "pi"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        for i in range(3):
            await ws.send(json.dumps({"message": f"secret chat text {i}"}))
            while json.loads(await ws.recv()).get("type") != "message":
                pass
asyncio.run(main())
PY
pi systemctl restart picochat
wait_healthy || fail "no /healthz after restart"
[ "$(health last_message_id)" = 3 ] || fail "history after restart: last id $(health last_message_id), want 3"
owner=$(pi stat -c '%U %a' /var/lib/private/picochat)
[ "${owner#* }" = 700 ] || fail "state dir is $owner"
echo "systemd: restart kept 3 messages in /var/lib/picochat (owner $owner)"

# 6. A crash is restarted (Restart=on-failure); a stop is clean (SIGTERM, exit 0).
pi systemctl kill -s KILL picochat
sleep 3
wait_healthy || fail "not restarted after SIGKILL"
restarts=$(pi systemctl show -p NRestarts --value picochat)
[ "$restarts" -ge 1 ] || fail "NRestarts is $restarts after SIGKILL"
[ "$(health last_message_id)" = 3 ] || fail "history after SIGKILL: last id $(health last_message_id)"
start=$(date +%s%N)
pi systemctl stop picochat
ms=$((($(date +%s%N) - start) / 1000000))
result=$(pi systemctl show -p Result --value picochat)
status=$(pi systemctl show -p ExecMainStatus --value picochat)
[ "$result" = success ] && [ "$status" = 0 ] || fail "stop: Result=$result ExecMainStatus=$status"
echo "systemd: SIGKILL restarted ($restarts restart), stop took $ms ms with exit status 0"

# 7. Nothing of the chat text in the journal; the hardening, rated by systemd.
if pi journalctl -u picochat --no-pager | grep -q "secret chat text"; then
  fail "chat text was logged"
fi
exposure=$(pi systemd-analyze security picochat --no-pager 2>/dev/null \
  | sed -n 's/.*Overall exposure level for picochat.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no rating"
python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" \
  || fail "systemd-analyze security exposure $exposure, want <= 2.0"
echo "systemd: no chat text in the journal; systemd-analyze security exposure $exposure (0 = locked down, 10 = exposed)"
