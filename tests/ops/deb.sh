#!/usr/bin/env bash
# The Debian packages: `cargo deb` (cargo-deb) builds picochat for amd64, and
# with the Pi toolchain (tests/pi-toolchain.sh) for arm64 and armhf. Each one
# must pass Debian's lintian with no error, carry a binary of its own
# architecture, the systemd unit, the man page and /etc/picochat/picochat.toml
# as a conffile, and ask for the glibc its binary needs. Installing, upgrading,
# removing and purging one for real is tests/ops/pi-install.sh's part (on the
# booted arm64 Debian).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
source "$here/../pi-toolchain.sh"
root="$PI_ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "deb: $*" >&2; exit 1; }

command -v lintian >/dev/null 2>&1 || {
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
}
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet

version=$(cd "$root" && cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "picochat"))')
debs=("$(cd "$root" && cargo deb --locked --quiet --output "$work" 2>"$work/cargo-deb.log")") || { cat "$work/cargo-deb.log" >&2; fail "cargo deb failed"; }
pi_toolchain >/dev/null
for target in "${PI_TARGETS[@]}"; do
  debs+=("$(pi_deb "$target" "$work")")
done

for deb in "${debs[@]}"; do
  name=$(basename "$deb")
  arch=$(dpkg-deb -f "$deb" Architecture)
  [ "$name" = "picochat_${version}-1_${arch}.deb" ] || fail "$name: not picochat_${version}-1_${arch}.deb"
  case "$arch" in
    amd64) want="x86-64" ;;
    arm64) want="ARM aarch64" ;;
    armhf) want="ARM, EABI5" ;;
    *) fail "$name: unexpected architecture $arch" ;;
  esac
  mkdir -p "$work/$arch"
  dpkg-deb -x "$deb" "$work/$arch/root"
  dpkg-deb -e "$deb" "$work/$arch/control"
  file -b "$work/$arch/root/usr/bin/picochat" | grep -q "$want" \
    || fail "$name: /usr/bin/picochat is not $want: $(file -b "$work/$arch/root/usr/bin/picochat")"
  for path in usr/lib/systemd/system/picochat.service usr/share/man/man1/picochat.1.gz \
      etc/picochat/picochat.toml usr/share/doc/picochat/copyright usr/share/picochat/https.conf; do
    [ -f "$work/$arch/root/$path" ] || fail "$name: no /$path"
  done
  [ -x "$work/$arch/root/usr/lib/picochat/certbot-deploy-hook" ] \
    || fail "$name: no executable /usr/lib/picochat/certbot-deploy-hook"
  sh -n "$work/$arch/root/usr/lib/picochat/certbot-deploy-hook" || fail "$name: the deploy hook does not parse"
  grep -qx /etc/picochat/picochat.toml "$work/$arch/control/conffiles" \
    || fail "$name: /etc/picochat/picochat.toml is not a conffile"
  cmp -s "$work/$arch/root/etc/picochat/picochat.toml" "$root/contrib/picochat.toml" \
    || fail "$name: the conffile is not contrib/picochat.toml"
  grep -q "^ExecStart=/usr/bin/picochat --config /etc/picochat/picochat.toml$" \
    "$work/$arch/root/usr/lib/systemd/system/picochat.service" || fail "$name: the unit does not start /usr/bin/picochat with the config file"
  # The packed relative relocations need glibc's GLIBC_ABI_DT_RELR (2.36):
  # the Depends line must say so (dpkg-shlibdeps alone would say 2.34).
  if readelf -d "$work/$arch/root/usr/bin/picochat" | grep -q '(RELR)'; then
    dpkg-deb -f "$deb" Depends | grep -q 'libc6 (>= 2.36)' \
      || fail "$name: the binary uses DT_RELR, but Depends is '$(dpkg-deb -f "$deb" Depends)'"
  fi
  for script in postinst prerm postrm; do
    sh -n "$work/$arch/control/$script" || fail "$name: $script is not valid sh"
  done
  grep -q 'deb-systemd-helper enable picochat.service' "$work/$arch/control/postinst" \
    || fail "$name: postinst does not enable the service"
  grep -q 'rm -rf /var/lib/private/picochat' "$work/$arch/control/postrm" \
    || fail "$name: postrm does not delete the state on purge"
  lintian --allow-root --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb" > "$work/lintian.txt" 2>&1 \
    || { cat "$work/lintian.txt" >&2; fail "$name: lintian reports an error"; }
  findings=$(grep -cE '^[EW]:' "$work/lintian.txt" || true)
  echo "deb: $name, $(stat -c %s "$deb") bytes, $(file -b "$work/$arch/root/usr/bin/picochat" | cut -d, -f1-2); lintian: no error, $findings warnings"
  sed 's/^/  /' "$work/lintian.txt" | grep -E '^  [EW]:' || true
done
