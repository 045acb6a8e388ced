#!/usr/bin/env bash
# The README's "Deploy on a Raspberry Pi", followed for real on a Pi-style
# machine: a fresh 64-bit Debian 12 (what Raspberry Pi OS is built on) booted
# in qemu-system-aarch64 with its own kernel and systemd as PID 1, 2 CPUs and
# 1 GiB like a Pi 3. The arm64 Debian package (tests/pi-toolchain.sh's
# pi_deb) goes over scp and is installed as the README says, `sudo apt install
# ./picochat_<version>_arm64.deb` over ssh as user "pi"; then, with every
# hardening line of the unit in force:
#   - installing enabled and started the service
#   - `systemctl status` says it listens on 0.0.0.0:8000; the page and /healthz
#     answer on the Pi and from the LAN (this host, over a tap link to the VM)
#   - it runs as a dynamic user; LimitNOFILE becomes --max-connections
#   - 50 clients connect at once and chat through the load generator: none
#     refused, nothing lost
#   - history survives `systemctl restart` in StateDirectory; a SIGKILL is
#     restarted; `systemctl stop` is a clean exit; no chat text in the journal
#   - `systemd-analyze security` rates the unit at most 2.0
#   - an edited /etc/picochat/picochat.toml takes effect; upgrading to a
#     package with a higher version restarts the service and keeps that edit
#     and the history; `apt remove` stops it and keeps both; `apt purge`
#     deletes /var/lib/picochat and /etc/picochat
# It prints the idle memory the service uses on the Pi (README footprint).
# `systemd-analyze verify` checks the unit file first. The VM image is built
# once (debootstrap under qemu-user) and kept in ~/.cache/picochat/pi-vm-$PI_IMAGE
# ($PICOCHAT_CACHE or $XDG_CACHE_HOME/picochat if set).
# The LAN is a tap device on a /24 this machine does not use yet (host .1,
# Pi .2). Not QEMU's user-mode networking: its port forwards listen with a
# backlog of 1, and a burst of connections there loses SYNs before they ever
# reach the Pi.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
source "$here/../pi-toolchain.sh"
root="$PI_ROOT"
unit="$root/contrib/picochat.service"
LOAD_BIN="$(dirname "$PICOCHAT_BIN")/picochat-load"

missing=()
for p in debootstrap qemu-system-arm openssh-client e2fsprogs systemd iproute2; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work="$(mktemp -d)"
qemu_pid=
tap=
cleanup() {
  if [ -n "$qemu_pid" ]; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if [ -n "$tap" ]; then ip link del "$tap" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
booted=
fail() {
  echo "pi: $*" >&2
  if [ -n "$booted" ]; then on_pi sudo journalctl --no-pager -n 40 >&2 || true; fi
  exit 1
}

# 1. The unit file itself: no unknown directives, no bad values.
sed "s#^ExecStart=/usr/bin/picochat#ExecStart=$PICOCHAT_BIN#" "$unit" > "$work/verify.service"
out="$(systemd-analyze verify "$work/verify.service" 2>&1 || true)"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
echo "pi: unit verified"

# 2. The package (and one with a higher version, for the upgrade), and a
# fresh arm64 Debian image (built once; every run boots a copy).
pi_toolchain
deb=$(pi_deb aarch64-unknown-linux-gnu "$work/debs")
version=$(dpkg-deb -f "$deb" Version)
next="${version%-*}-$((${version##*-} + 1))"
deb_next=$(pi_deb aarch64-unknown-linux-gnu "$work/debs" "$next")
# Bump when the image recipe below changes, so a cached image is rebuilt.
PI_IMAGE=2
# Kept outside the checkout, so a fresh clone (CI) boots the image the last
# run built instead of spending minutes on debootstrap again.
cache="${PICOCHAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picochat}"
vm="$cache/pi-vm-$PI_IMAGE"
if [ ! -f "$vm/rootfs.img" ]; then
  rm -rf "$cache"/pi-vm-* && mkdir -p "$vm"
  rootfs="$work/rootfs"
  echo "pi: building the arm64 Debian image (debootstrap under qemu-user, a few minutes)"
  # Unpack natively, then configure under emulation with a small initramfs
  # (only the virtio modules this machine boots from) instead of every module.
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=systemd,systemd-sysv,libnss-systemd,dbus,linux-image-cloud-arm64,initramfs-tools,openssh-server,sudo,curl,procps \
    bookworm "$rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
  echo MODULES=list > "$rootfs/etc/initramfs-tools/conf.d/virtio-only"
  printf 'virtio_mmio\nvirtio_blk\nvirtio_net\n' > "$rootfs/etc/initramfs-tools/modules"
  chroot "$rootfs" /debootstrap/debootstrap --second-stage >> "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap --second-stage failed"; }
  ssh-keygen -q -t ed25519 -N '' -C picochat-test -f "$vm/key"
  chroot "$rootfs" useradd -m -s /bin/bash -G sudo pi
  echo 'pi ALL=(ALL) NOPASSWD:ALL' > "$rootfs/etc/sudoers.d/pi"
  chmod 0440 "$rootfs/etc/sudoers.d/pi"
  install -d -m 0700 "$rootfs/home/pi/.ssh"
  install -m 0600 "$vm/key.pub" "$rootfs/home/pi/.ssh/authorized_keys"
  chroot "$rootfs" chown -R pi:pi /home/pi/.ssh
  chroot "$rootfs" systemctl enable systemd-networkd >/dev/null 2>&1
  echo raspberrypi > "$rootfs/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 raspberrypi\n' > "$rootfs/etc/hosts"
  echo '/dev/vda / ext4 defaults 0 1' > "$rootfs/etc/fstab"
  cp "$rootfs"/boot/vmlinuz-* "$vm/vmlinuz"
  cp "$rootfs"/boot/initrd.img-* "$vm/initrd.img"
  truncate -s 2G "$vm/rootfs.img.tmp"
  mkfs.ext4 -q -d "$rootfs" -L rootfs "$vm/rootfs.img.tmp"
  mv "$vm/rootfs.img.tmp" "$vm/rootfs.img"
  rm -rf "$rootfs"
fi
cp --sparse=always "$vm/rootfs.img" "$work/disk.img"

# 3. Boot, wired to this host by a tap device. The Pi's address goes into its
# disk (debugfs writes the networkd file without mounting the image).
net=$(python3 -c '
import ipaddress, json, subprocess
used = [ipaddress.ip_network(r["dst"], strict=False)
        for r in json.loads(subprocess.check_output(["ip", "-j", "route"])) if r["dst"] != "default"]
for cand in ("10.231.87.0/24", "172.30.231.0/24", "192.168.231.0/24", "10.199.13.0/24"):
    if not any(ipaddress.ip_network(cand).overlaps(u) for u in used):
        print(cand.rsplit(".", 1)[0])
        break
')
[ -n "$net" ] || fail "no free /24 for the test LAN"
host_ip="$net.1"
pi_ip="$net.2"
printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=%s/24\n' "$pi_ip" > "$work/80-lan.network"
debugfs -w -R "rm /etc/systemd/network/80-lan.network" "$work/disk.img" >/dev/null 2>&1 || true
debugfs -w -R "write $work/80-lan.network /etc/systemd/network/80-lan.network" "$work/disk.img" >/dev/null 2>&1
debugfs -R "cat /etc/systemd/network/80-lan.network" "$work/disk.img" 2>/dev/null | grep -q "$pi_ip" \
  || fail "could not write the Pi's network file into its disk"
tap=pichat$$
ip tuntap add dev "$tap" mode tap
ip addr add "$host_ip/24" dev "$tap"
ip link set "$tap" up
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic \
  -kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" -append "root=/dev/vda rw console=ttyAMA0" \
  -drive if=none,file="$work/disk.img",format=raw,id=hd0 -device virtio-blk-device,drive=hd0 \
  -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
  -device virtio-net-device,netdev=n0 > "$work/console.log" 2>&1 < /dev/null &
qemu_pid=$!
ssh_opts=(-q -i "$vm/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=5 -o BatchMode=yes)
on_pi() { timeout 120 ssh "${ssh_opts[@]}" "pi@$pi_ip" "$@"; }
started=$(date +%s)
until on_pi true 2>/dev/null; do
  kill -0 "$qemu_pid" 2>/dev/null || { tail -n 30 "$work/console.log" >&2; fail "qemu exited"; }
  [ $(($(date +%s) - started)) -lt 300 ] || { tail -n 30 "$work/console.log" >&2; fail "no ssh after 300 s"; }
  sleep 2
done
booted=1
echo "pi: $(on_pi 'uname -m; . /etc/os-release; echo $PRETTY_NAME' | paste -sd ' '), ssh after $(($(date +%s) - started)) s"

# 4. The README's step, as written there: apt installs the package, which
# enables and starts the service.
timeout 120 scp "${ssh_opts[@]}" "$deb" "$deb_next" "pi@$pi_ip:/tmp/"
on_pi "cd /tmp && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$(basename "$deb")" \
  > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt install ./$(basename "$deb") failed"; }
[ "$(on_pi systemctl is-enabled picochat)" = enabled ] || fail "installing did not enable the service"
wait_healthy() {
  for _ in $(seq 1 100); do
    curl -sf "http://$pi_ip:8000/healthz" > "$work/health.json" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
health() { python3 -c "import json; print(json.load(open('$work/health.json'))['$1'])"; }
wait_healthy || fail "no /healthz from the LAN side after enable --now"
on_pi sudo systemctl status picochat --no-pager | grep -q "listening on 0.0.0.0:8000" \
  || fail "systemctl status does not show 'listening on 0.0.0.0:8000'"
on_pi curl -sf http://localhost:8000/healthz | grep -q '"status":"ok"' || fail "curl on the Pi got no healthz"
page=$(curl -s -o /dev/null -w '%{http_code}' "http://$pi_ip:8000/")
[ "$page" = 200 ] || fail "GET / from the LAN gave $page"

pid=$(on_pi sudo systemctl show -p MainPID --value picochat)
# ssh hands the remote shell one string: quote for it.
uid=$(on_pi "sudo awk '/^Uid:/ {print \$2}' /proc/$pid/status")
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "runs as uid $uid, not a DynamicUser uid"
on_pi sudo journalctl -u picochat --no-pager | grep -q "max 19936 connections" \
  || fail "LimitNOFILE=20000 did not become --max-connections 19936"
# smaps_rollup walks the page tables: /proc/PID/status's VmRSS lags on this
# kernel (6.1 batches each thread's RSS counters) and read 0.9 of 2.3 MiB.
memory=$(on_pi "sudo grep -E '^(Rss|Anonymous):' /proc/$pid/smaps_rollup" | awk '{printf "%s %s KiB, ", $1, $2}')
echo "pi: active as dynamic user (uid $uid), 19936 connections allowed; idle ${memory%, }"

# 5. Chat from the LAN: the load generator (50 clients), then one user whose text
# must never reach the journal. Then a restart: history is in /var/lib/picochat.
report=$("$LOAD_BIN" --url "ws://$pi_ip:8000/ws" --clients 50 --senders 5 --rate 20 \
  --duration 3s --quiet --json)
python3 - "$report" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["connected"] == 50 and r["failed"] == 0 and r["dropped"] == 0, r
assert r["lost"] == 0 and r["sent"] > 0 and r["received"] == r["expected"] == r["sent"] * 50, r
print(f"pi: {r['sent']} messages to 50 clients, {r['received']} deliveries, 0 lost")
PY
python3 - "$pi_ip" <<'PY'
import asyncio, json, sys, websockets
async def main():
    async with websockets.connect(f"ws://{sys.argv[1]}:8000/ws") as ws:
        await ws.send(json.dumps({"type": "join", "username": "pi"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        for i in range(3):
            await ws.send(json.dumps({"message": f"secret chat text {i}"}))
            while json.loads(await ws.recv()).get("type") != "message":
                pass
asyncio.run(main())
PY
wait_healthy || fail "no /healthz after chat"
sent=$(health last_message_id)
on_pi sudo systemctl restart picochat
wait_healthy || fail "no /healthz after restart"
[ "$(health last_message_id)" = "$sent" ] || fail "history after restart: last id $(health last_message_id), want $sent"
owner=$(on_pi "sudo stat -c '%U %a' /var/lib/private/picochat")
[ "${owner#* }" = 700 ] || fail "state dir is $owner"
echo "pi: restart kept $sent messages in /var/lib/picochat (owner $owner)"

# 6. A crash is restarted (Restart=on-failure, RestartSec=2s); a stop is clean.
on_pi sudo systemctl kill -s KILL picochat
sleep 3
wait_healthy || fail "not restarted after SIGKILL"
restarts=$(on_pi sudo systemctl show -p NRestarts --value picochat)
[ "$restarts" -ge 1 ] || fail "NRestarts is $restarts after SIGKILL"
[ "$(health last_message_id)" = "$sent" ] || fail "history after SIGKILL: last id $(health last_message_id)"
on_pi sudo systemctl stop picochat
result=$(on_pi sudo systemctl show -p Result --value picochat)
status=$(on_pi sudo systemctl show -p ExecMainStatus --value picochat)
[ "$result" = success ] && [ "$status" = 0 ] || fail "stop: Result=$result ExecMainStatus=$status"
echo "pi: SIGKILL restarted ($restarts restart), systemctl stop exited 0"

# 7. Nothing of the chat text in the journal; the hardening, rated by systemd.
if on_pi sudo journalctl -u picochat --no-pager | grep -q "secret chat text"; then
  fail "chat text was logged"
fi
exposure=$(on_pi sudo systemd-analyze security picochat --no-pager 2>/dev/null \
  | sed -n 's/.*Overall exposure level for picochat.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no rating"
python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" \
  || fail "systemd-analyze security exposure $exposure, want <= 2.0"
echo "pi: no chat text in the journal; systemd-analyze security exposure $exposure (0 = locked down, 10 = exposed)"

# 8. The package's life: an edited config, an upgrade, remove, purge.
conf=/etc/picochat/picochat.toml
on_pi "sudo sed -i 's/^# max-connections = .*/max-connections = \"500\"/' $conf"
on_pi sudo systemctl start picochat
wait_healthy || fail "no /healthz after start"
pid=$(on_pi sudo systemctl show -p MainPID --value picochat)
on_pi sudo journalctl -u picochat _PID="$pid" --no-pager | grep -q "max 500 connections" \
  || fail "the edited $conf (max-connections = \"500\") did not take effect"
on_pi "cd /tmp && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$(basename "$deb_next")" \
  > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "upgrade to $next failed"; }
[ "$(on_pi dpkg-query -W -f='\${Version}' picochat)" = "$next" ] || fail "not upgraded to $next"
wait_healthy || fail "no /healthz after the upgrade"
upgraded=$(on_pi sudo systemctl show -p MainPID --value picochat)
[ "$upgraded" != "$pid" ] || fail "the upgrade did not restart the service"
on_pi grep -qx "'max-connections = \"500\"'" $conf || fail "the upgrade lost the edit to $conf"
on_pi sudo journalctl -u picochat _PID="$upgraded" --no-pager | grep -q "max 500 connections" \
  || fail "after the upgrade, the edited config is not in effect"
[ "$(health last_message_id)" = "$sent" ] || fail "history after the upgrade: last id $(health last_message_id), want $sent"
echo "pi: upgraded $version -> $next: restarted, edited $conf and $sent messages kept"
# 9. HTTPS the packaged way (docs/operations.md, "Native TLS"): the drop-in
# lets the hardened service bind 443 and 80; before any certificate exists it
# serves the ACME challenge and refuses TLS; certbot's deploy hook (run here
# as certbot runs it, with RENEWED_LINEAGE, a test CA standing in for Let's
# Encrypt) copies the root-only pair where the dynamic user reads it and
# reloads; a renewal swaps the serial without a restart.
tls_name=chat.picochat.test
(
  cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=picochat pi test CA" 2>/dev/null
  printf 'subjectAltName=DNS:%s\n' "$tls_name" > le.ext
  for n in 1 2; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "le$n.key" -out "le$n.csr" \
      -subj "/CN=$tls_name" 2>/dev/null
    openssl x509 -req -in "le$n.csr" -CA ca.pem -CAkey ca.key -set_serial "$((7000 + n))" \
      -out "le$n.pem" -days 2 -extfile le.ext 2>/dev/null
  done
)
timeout 120 scp "${ssh_opts[@]}" "$work/le1.pem" "$work/le1.key" "$work/le2.pem" "$work/le2.key" "pi@$pi_ip:/tmp/"
on_pi "sudo install -D -m 644 /usr/share/picochat/https.conf /etc/systemd/system/picochat.service.d/https.conf \
  && sudo systemctl daemon-reload"
on_pi "sudo mkdir -p /var/lib/picochat/acme/.well-known/acme-challenge \
  && echo tok.thumbprint | sudo tee /var/lib/picochat/acme/.well-known/acme-challenge/tok >/dev/null"
on_pi "printf '%s\n' 'listen = \"0.0.0.0:443\"' 'http-redirect = \"0.0.0.0:80\"' \
  'acme-webroot = \"/var/lib/picochat/acme\"' 'tls-cert = \"/var/lib/picochat/tls/fullchain.pem\"' \
  'tls-key = \"/var/lib/picochat/tls/privkey.pem\"' | sudo tee -a $conf >/dev/null"
on_pi sudo systemctl restart picochat
https_get() { curl -sf --max-time 10 --cacert "$work/ca.pem" --resolve "$tls_name:443:$pi_ip" "https://$tls_name$1"; }
served_serial() {
  openssl s_client -connect "$pi_ip:443" -servername "$tls_name" </dev/null 2>/dev/null \
    | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
for _ in $(seq 1 100); do
  [ "$(curl -s --max-time 5 "http://$pi_ip/.well-known/acme-challenge/tok")" = tok.thumbprint ] && break
  sleep 0.2
done
[ "$(curl -s --max-time 5 "http://$pi_ip/.well-known/acme-challenge/tok")" = tok.thumbprint ] \
  || fail "no ACME challenge on port 80 before the first certificate (journal: $(on_pi sudo journalctl -u picochat -n 5 --no-pager))"
on_pi sudo journalctl -u picochat --no-pager | grep -q "does not exist yet" \
  || fail "the first start does not say it waits for the certificate"
if https_get /healthz >/dev/null; then fail "TLS answered before there was a certificate"; fi
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$pi_ip/r/general")" = 308 ] || fail "port 80 does not redirect"
lineage=/etc/letsencrypt/live/$tls_name
deploy() { # N: certbot's files for certificate N, root's alone, then its deploy hook
  on_pi "sudo install -d -m 700 $lineage && sudo install -m 600 /tmp/le$1.pem $lineage/fullchain.pem \
    && sudo install -m 600 /tmp/le$1.key $lineage/privkey.pem \
    && sudo RENEWED_LINEAGE=$lineage /usr/lib/picochat/certbot-deploy-hook"
}
deploy 1
for _ in $(seq 1 50); do https_get /healthz >/dev/null && break; sleep 0.2; done
https_get /healthz | grep -q '"status":"ok"' || fail "no HTTPS after the deploy hook"
[ "$(served_serial)" = 1B59 ] || fail "served serial $(served_serial), want 1B59 (7001)"
before=$(on_pi sudo systemctl show -p MainPID --value picochat)
deploy 2
for _ in $(seq 1 50); do [ "$(served_serial)" = 1B5A ] && break; sleep 0.2; done
[ "$(served_serial)" = 1B5A ] || fail "after the renewal's hook, serial $(served_serial), want 1B5A (7002)"
[ "$(on_pi sudo systemctl show -p MainPID --value picochat)" = "$before" ] || fail "the renewal restarted the service"
key_owner=$(on_pi "sudo stat -L -c '%u %a' /var/lib/picochat/tls/privkey.pem")
[ "${key_owner% *}" = "$(on_pi "sudo stat -L -c %u /var/lib/picochat")" ] && [ "${key_owner#* }" = 600 ] \
  || fail "the copied key is $key_owner"
# Back to plain :8000, so the remove step below checks a running service.
on_pi "sudo rm -r /etc/systemd/system/picochat.service.d && sudo systemctl daemon-reload \
  && sudo sed -i '/^listen = /d; /^http-redirect = /d; /^acme-webroot = /d; /^tls-cert = /d; /^tls-key = /d' $conf \
  && sudo systemctl restart picochat"
wait_healthy || fail "no /healthz on :8000 after HTTPS was taken out again"
echo "pi: HTTPS on 443 with the drop-in: ACME challenge and redirect before the first certificate, the deploy hook brought serial 7001 up and a renewal 7002 without a restart"

on_pi sudo DEBIAN_FRONTEND=noninteractive apt-get remove -y -q picochat > "$work/apt.log" 2>&1 \
  || { cat "$work/apt.log" >&2; fail "apt remove failed"; }
if on_pi systemctl is-active -q picochat; then fail "apt remove left the service running"; fi
curl -sf "http://$pi_ip:8000/healthz" >/dev/null 2>&1 && fail "something still answers on :8000 after apt remove"
on_pi sudo test -d /var/lib/private/picochat || fail "apt remove deleted the history"
on_pi test -f $conf || fail "apt remove deleted $conf"
on_pi sudo DEBIAN_FRONTEND=noninteractive apt-get purge -y -q picochat > "$work/apt.log" 2>&1 \
  || { cat "$work/apt.log" >&2; fail "apt purge failed"; }
for gone in /var/lib/private/picochat /var/lib/picochat /etc/picochat /usr/bin/picochat; do
  if on_pi sudo test -e "$gone"; then fail "apt purge left $gone"; fi
done
echo "pi: apt remove stopped it and kept its state; apt purge deleted /var/lib/picochat and /etc/picochat"
on_pi sudo systemctl poweroff >/dev/null 2>&1 || true
