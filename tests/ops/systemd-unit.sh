#!/usr/bin/env bash
# contrib/picochat.service passes `systemd-analyze verify` (with ExecStart pointed
# at the built binary): no unknown directives, no bad values.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed "s#^ExecStart=/usr/local/bin/picochat#ExecStart=$PICOCHAT_BIN#" "$here/../../contrib/picochat.service" > "$work/picochat.service"
out="$(systemd-analyze verify "$work/picochat.service" 2>&1 || true)"
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:" >&2
  echo "$out" >&2
  exit 1
fi
echo "systemd unit: verified"
